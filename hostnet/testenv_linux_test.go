//go:build linux

package hostnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// Helpers for the privileged tests: they build real namespaces and devices
// with iproute2 and read the world back with `ip -j` / `bridge -j`, an
// independent reading to compare Scan against.

// requirePrivileges skips the test without root, ip, bridge or nsenter; under
// CI=true a missing prerequisite fails instead, so CI cannot go green by
// skipping.
func requirePrivileges(t testing.TB) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		missing("needs root (creates network namespaces)")
	}
	for _, bin := range []string{"ip", "bridge", "nsenter", "unshare", "mount", "umount"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing("needs %s in PATH: %v", bin, err)
		}
	}
	if miss, err := MissingCapabilities(""); err != nil || len(miss) > 0 {
		missing("missing capabilities %v (%v)", miss, err)
	}
}

// run runs a command and fails the test when it fails.
func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := try(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// try runs a command and returns its stdout.
func try(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// cleanup registers a command to run at the end of the test. A device
// already gone with its namespace is fine.
func cleanup(t testing.TB, args ...string) {
	t.Cleanup(func() {
		if _, err := try(args...); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			t.Logf("cleanup: %v", err)
		}
	})
}

// addNetns creates a named namespace removed at cleanup.
func addNetns(t testing.TB, name string) {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if _, err := os.Stat("/var/run/netns/" + name); err == nil {
			if _, err := try("ip", "netns", "del", name); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// ipAddrs is one entry of `ip -j addr show`.
type ipAddrs struct {
	Ifname   string `json:"ifname"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// ipView is what iproute2 says about one namespace.
type ipView struct {
	links map[string]testenv.IPLink
	addrs map[string][]Addr
	ports map[string]testenv.BridgePort
}

// readIP reads a namespace with iproute2; enter is a command prefix that runs
// inside it (nil for the test's own namespace).
func readIP(t testing.TB, enter ...string) ipView {
	t.Helper()
	var addrs []ipAddrs
	out := run(t, append(append([]string{}, enter...), "ip", "-j", "addr", "show")...)
	if err := json.Unmarshal([]byte(out), &addrs); err != nil {
		t.Fatalf("ip -j addr show: %v", err)
	}
	v := ipView{links: testenv.IPLinks(t, enter...), addrs: map[string][]Addr{}, ports: map[string]testenv.BridgePort{}}
	for _, a := range addrs {
		for _, ai := range a.AddrInfo {
			ip, err := netip.ParseAddr(ai.Local)
			if err != nil {
				t.Fatalf("ip addr: %s: %v", ai.Local, err)
			}
			v.addrs[a.Ifname] = append(v.addrs[a.Ifname], Addr{netip.PrefixFrom(ip, ai.Prefixlen), ai.Family})
		}
	}
	for _, p := range testenv.BridgePorts(t, enter...) {
		v.ports[p.Ifname] = p
	}
	return v
}

// ipKind is what Link.Kind should be, derived from iproute2's reading.
func ipKind(l testenv.IPLink) string {
	switch k := l.Linkinfo.InfoKind; {
	case k == "" && l.LinkType == "loopback":
		return "loopback"
	case k == "":
		return "physical"
	case k == "tun":
		if typ, _ := l.Linkinfo.InfoData["type"].(string); typ != "" {
			return typ
		}
		return k
	default:
		return k
	}
}

// ipMAC is what Link.MAC should be: iproute2 prints zero addresses, Scan
// omits them.
func ipMAC(l testenv.IPLink) string {
	if strings.Trim(l.Address, "0:.") == "" {
		return ""
	}
	return strings.ToLower(l.Address)
}

// waitSettled waits until two readings of the test links, 300 ms apart, agree
// on operstate and bridge port state: carrier changes reach rtnetlink through
// the kernel's linkwatch, up to a second late.
func waitSettled(t testing.TB, views func() string) {
	t.Helper()
	prev := views()
	for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		cur := views()
		if cur == prev {
			return
		}
		prev = cur
	}
	t.Logf("topology did not settle; comparing anyway")
}
