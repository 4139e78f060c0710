package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
)

// documentedCaps is the README's capability list (setpriv names).
const documentedCaps = "sys_admin,sys_ptrace,net_raw,dac_read_search,net_admin"

// startAsUser runs the exporter binary as a throwaway uid (no passwd entry
// needed) in the docker group, with exactly caps as its inheritable,
// ambient and bounding sets, through setpriv.
func startAsUser(t *testing.T, caps string, extra ...string) *testenv.Exporter {
	t.Helper()
	bin := testenv.ExporterBinary(t)
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/var/run/docker.sock", &st); err != nil {
		t.Fatalf("docker socket: %v", err)
	}
	uid := 60000 + os.Getpid()%5000
	set := "-all"
	for _, c := range strings.Split(caps, ",") {
		set += ",+" + c
	}
	addr := testenv.FreeAddr(t)
	args := []string{fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), fmt.Sprintf("--groups=%d", st.Gid),
		"--inh-caps=" + set, "--ambient-caps=" + set, "--bounding-set=" + set, "--",
		bin, "--web.listen-address=" + addr, "--log.level=debug", "--no-collector.libvirt"}
	args = append(args, extra...)
	p := testenv.Start(t, "nta-exporter (setpriv "+caps+")", "setpriv", args...)
	e := &testenv.Exporter{Process: p, Addr: addr, URL: "http://" + addr}
	p.WaitHTTP(t, e.URL+"/metrics", 20*time.Second)
	return e
}

// TestDocumentedCapabilitiesAreEnough: as a non-root user with only the
// README's capabilities and the docker group, a container's namespace
// resolves to docker:SANDBOX (not ino:…), its endpoint names its
// interfaces, its own counters are exported and no scan error is left.
// Without CAP_DAC_READ_SEARCH the same run cannot list Docker's 0700 netns
// directory: it says so once at warn, naming the capability.
func TestDocumentedCapabilitiesAreEnough(t *testing.T) {
	testenv.RequireRoot(t)
	testimage.RequireDocker(t)
	testenv.RequireCommand(t, "setpriv", "Debian package util-linux")
	name := testimage.RunContainer(t, "nt-priv", testimage.Ensure(t))
	_, netnsID := sandbox(t, name)

	e := startAsUser(t, documentedCaps)
	testenv.Eventually(t, "the container seen with its namespace and counters", 20*time.Second, func() error {
		m, err := testenv.FetchMetrics(e.URL + "/metrics")
		if err != nil {
			return err
		}
		info := m.All("nta_docker_container_info", map[string]string{"container": name})
		if len(info) != 1 || info[0].Labels["netns"] != netnsID {
			return fmt.Errorf("nta_docker_container_info{container=%s} = %v, want netns %s", name, info, netnsID)
		}
		ep := m.All("nta_docker_endpoint_info", map[string]string{"container": name})
		if len(ep) != 1 || ep[0].Labels["interface"] == "" || ep[0].Labels["host_interface"] == "" || ep[0].Labels["netns"] != netnsID {
			return fmt.Errorf("nta_docker_endpoint_info{container=%s} = %v, want its interfaces in %s", name, ep, netnsID)
		}
		if rx := m.All("nta_container_network_receive_bytes_total", map[string]string{"container": name}); len(rx) == 0 {
			return fmt.Errorf("no nta_container_network_receive_bytes_total for %s", name)
		}
		if errs := m.All("nta_netns_scan_errors", nil); len(errs) != 1 || errs[0].Value != 0 {
			return fmt.Errorf("nta_netns_scan_errors = %v, want 0", errs)
		}
		return nil
	})
	if strings.Contains(e.Logs.String(), "missing privileges") {
		t.Errorf("the documented capability set is reported as missing privileges:\n%s", testenv.Tail(e.Logs.String(), 20))
	}

	t.Run("without DAC_READ_SEARCH", func(t *testing.T) {
		e := startAsUser(t, "sys_admin,sys_ptrace,net_raw,net_admin")
		testenv.Eventually(t, "the scan error counted", 20*time.Second, func() error {
			m, err := testenv.FetchMetrics(e.URL + "/metrics")
			if err != nil {
				return err
			}
			if errs := m.All("nta_netns_scan_errors", nil); len(errs) != 1 || errs[0].Value < 1 {
				return fmt.Errorf("nta_netns_scan_errors = %v, want >= 1", errs)
			}
			return nil
		})
		for range 3 { // more scans, no more warnings
			if _, err := testenv.Fetch(e.URL + "/metrics"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1100 * time.Millisecond) // past --scrape.host-cache
		}
		logs := e.Logs.String()
		if n := countLines(logs, "level=WARN", "/var/run/docker/netns", "CAP_DAC_READ_SEARCH"); n != 1 {
			t.Errorf("%d warnings naming /var/run/docker/netns and CAP_DAC_READ_SEARCH, want exactly 1:\n%s", n, testenv.Tail(logs, 30))
		}
		if !strings.Contains(logs, "missing privileges") || !strings.Contains(logs, "CAP_DAC_READ_SEARCH") {
			t.Errorf("the start-up privilege warning does not name CAP_DAC_READ_SEARCH:\n%s", testenv.Tail(logs, 30))
		}
	})
}
