package e2e

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
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

// nsPair is two named namespaces on one bridge, IPv6 off so the only frames
// are the ones a test sends (and ARP).
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
			shQuiet("iptables", append([]string{"-D"}, rule...)...)
		}
		shQuiet("ip", "link", "del", p.bridge)
		shQuiet("ip", "link", "del", p.ah)
		shQuiet("ip", "link", "del", p.bh)
		shQuiet("ip", "netns", "del", p.a)
		shQuiet("ip", "netns", "del", p.b)
	}
	del()
	t.Cleanup(del)
	sh(t, "ip", "link", "add", p.bridge, "type", "bridge")
	sh(t, "sysctl", "-qw", "net.ipv6.conf."+p.bridge+".disable_ipv6=1")
	sh(t, "ip", "link", "set", p.bridge, "up")
	if _, err := exec.LookPath("iptables"); err == nil {
		sh(t, "iptables", append([]string{"-I"}, rule...)...)
	}
	for _, side := range []struct{ ns, host, ip string }{{p.a, p.ah, p.aIP}, {p.b, p.bh, p.bIP}} {
		sh(t, "ip", "netns", "add", side.ns)
		sh(t, "ip", "netns", "exec", side.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
		sh(t, "ip", "netns", "exec", side.ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
		sh(t, "ip", "link", "add", side.host, "type", "veth", "peer", "name", "eth0", "netns", side.ns)
		sh(t, "sysctl", "-qw", "net.ipv6.conf."+side.host+".disable_ipv6=1")
		sh(t, "ip", "link", "set", side.host, "master", p.bridge, "up")
		sh(t, "ip", "-n", side.ns, "addr", "add", side.ip+"/24", "dev", "eth0")
		sh(t, "ip", "-n", side.ns, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", side.ns, "link", "set", "lo", "up")
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
	cmd  *exec.Cmd
	file string
	errb *syncBuffer
}

func startTcpdump(t *testing.T, iface, dir string) *tcpdump {
	t.Helper()
	file := fmt.Sprintf("%s/%s-%s.pcap", t.TempDir(), iface, dir)
	d := &tcpdump{file: file, errb: &syncBuffer{}}
	d.cmd = exec.Command("tcpdump", "-i", iface, "-Q", dir, "-U", "-n", "-s", "256", "-w", file)
	d.cmd.Stderr = d.errb
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() { _ = d.cmd.Process.Kill(); _ = d.cmd.Wait() })
	waitFor(t, "tcpdump listening on "+iface, 10e9, func() error {
		if strings.Contains(d.errb.String(), "listening on") {
			return nil
		}
		return fmt.Errorf("no 'listening on' yet: %s", d.errb.String())
	})
	return d
}

// stop ends the capture and returns tcpdump's kernel drop count.
func (d *tcpdump) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(interruptSignal)
	_ = d.cmd.Wait()
	if !strings.Contains("\n"+d.errb.String(), "\n0 packets dropped by kernel") {
		t.Fatalf("tcpdump dropped packets, the reference is incomplete: %s", d.errb.String())
	}
}
