package e2e

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// inNetns runs f on an OS thread switched into the named namespace. Sockets
// opened by f stay in that namespace after f returns.
func inNetns(t testing.TB, name string, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the thread is discarded, never returned to the pool
		ns, err := netns.GetFromName(name)
		if err != nil {
			done <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		f()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("enter netns %s: %v", name, err)
	}
}

// nsPair is two named namespaces on one bridge, IPv6 and multicast (IGMP
// reports) off so the only frames are the ones a test sends (and ARP).
type nsPair struct {
	bridge     string
	a, b       string // namespace names
	ah, bh     string // host-side veths
	aIP, bIP   string
	aMAC, bMAC string
}

func newNSPair(t *testing.T, prefix, subnet string) *nsPair {
	t.Helper()
	p := &nsPair{bridge: prefix + "br", a: prefix + "a", b: prefix + "b", ah: prefix + "ah", bh: prefix + "bh",
		aIP: subnet + ".1", bIP: subnet + ".2"}
	// Docker sets the FORWARD policy to DROP and br_netfilter sends bridged
	// frames through it: let this bridge forward.
	rule := []string{"FORWARD", "-i", p.bridge, "-o", p.bridge, "-j", "ACCEPT"}
	del := func() {
		if _, err := exec.LookPath("iptables"); err == nil {
			testenv.RunQuiet("iptables", append([]string{"-D"}, rule...)...)
		}
		testenv.RunQuiet("ip", "link", "del", p.bridge)
		testenv.RunQuiet("ip", "link", "del", p.ah)
		testenv.RunQuiet("ip", "link", "del", p.bh)
		testenv.RunQuiet("ip", "netns", "del", p.a)
		testenv.RunQuiet("ip", "netns", "del", p.b)
	}
	del()
	t.Cleanup(del)
	testenv.Run(t, "ip", "link", "add", p.bridge, "type", "bridge")
	testenv.Run(t, "sysctl", "-qw", "net.ipv6.conf."+p.bridge+".disable_ipv6=1")
	testenv.Run(t, "ip", "link", "set", p.bridge, "multicast", "off", "up")
	if _, err := exec.LookPath("iptables"); err == nil {
		testenv.Run(t, "iptables", append([]string{"-I"}, rule...)...)
	}
	for _, side := range []struct{ ns, host, ip string }{{p.a, p.ah, p.aIP}, {p.b, p.bh, p.bIP}} {
		testenv.Run(t, "ip", "netns", "add", side.ns)
		testenv.Run(t, "ip", "netns", "exec", side.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
		testenv.Run(t, "ip", "netns", "exec", side.ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
		testenv.Run(t, "ip", "link", "add", side.host, "type", "veth", "peer", "name", "eth0", "netns", side.ns)
		testenv.Run(t, "sysctl", "-qw", "net.ipv6.conf."+side.host+".disable_ipv6=1")
		testenv.Run(t, "ip", "link", "set", side.host, "master", p.bridge, "multicast", "off", "up")
		testenv.Run(t, "ip", "-n", side.ns, "addr", "add", side.ip+"/24", "dev", "eth0")
		testenv.Run(t, "ip", "-n", side.ns, "link", "set", "eth0", "multicast", "off", "up")
		testenv.Run(t, "ip", "-n", side.ns, "link", "set", "lo", "up")
	}
	p.aMAC = macIn(t, p.a)
	p.bMAC = macIn(t, p.b)
	return p
}

func macIn(t testing.TB, ns string) string {
	var rows []struct{ Address string }
	jsonOf(t, &rows, "ip", "-n", ns, "-j", "link", "show", "eth0")
	return rows[0].Address
}

// tcpdump captures one direction of an interface to a pcap file.
type tcpdump struct {
	*testenv.Process
	file string
}

// startTcpdump runs tcpdump in immediate mode: libpcap otherwise hands over
// a TPACKET_V3 block only when it fills or times out, and frames in the block
// still open when tcpdump exits are never written.
func startTcpdump(t *testing.T, iface, dir string) *tcpdump {
	t.Helper()
	file := fmt.Sprintf("%s/%s-%s.pcap", t.TempDir(), iface, dir)
	d := &tcpdump{file: file}
	d.Process = testenv.Start(t, "tcpdump", "tcpdump", "-i", iface, "-Q", dir, "--immediate-mode", "-U", "-n", "-s", "256", "-w", file)
	testenv.Eventually(t, "tcpdump listening on "+iface, 10*time.Second, func() error {
		if strings.Contains(d.Logs.String(), "listening on") {
			return nil
		}
		return fmt.Errorf("no 'listening on' yet: %s", d.Logs.String())
	})
	return d
}

// stop ends the capture and fails t when tcpdump reports kernel drops.
func (d *tcpdump) stop(t *testing.T) {
	t.Helper()
	_ = d.Cmd.Process.Signal(interruptSignal)
	if exited, _ := d.WaitExit(10 * time.Second); !exited {
		t.Fatalf("tcpdump did not stop within 10s of SIGINT")
	}
	if !strings.Contains("\n"+d.Logs.String(), "\n0 packets dropped by kernel") {
		t.Fatalf("tcpdump dropped packets, the reference is incomplete: %s", d.Logs.String())
	}
}
