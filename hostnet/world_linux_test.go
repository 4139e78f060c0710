//go:build linux

package hostnet

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// testWorld is a topology built by the integration test:
//
//	host:   <p>ba, <p>bb: STP bridges joined by veths <p>x0-<p>x1 and <p>y0-<p>y1,
//	        a loop in which STP blocks one port; <p>ba also has ports <p>h0,
//	        <p>d0 and <p>u0 (down: disabled)
//	named A: eth0 (peer <p>h0), ab0 (peer ba0 in B)
//	named B: br0 (bridge, no STP) ports ba0 (learning), tap0 (down); p1 <-> p2 veth; mv0 macvlan
//	         on p1; vx0 vxlan on p1; tun0; optional vlan p1.10 and ipvlan
//	docker C (only bind-mounted in a temporary "docker" directory):
//	         eth0 (peer <p>d0), mvx macvlan whose lower device is p2 in B
//	anonymous (unshare -n sleep): eth0 (peer <p>u0)
type testWorld struct {
	p          string // device name prefix, unique per test process
	nsA, nsB   string // named namespaces
	dockerDir  string
	dockerBase string
	anonPID    int
	anonIno    uint64
	ownerPID   int // sleep running inside named A
	// peers and parents we built: (netns id, name) -> (netns id, name)
	peers, parents map[[2]string][2]string
	optional       []string // optional device kinds the kernel supported
}

func buildWorld(t *testing.T) *testWorld {
	requirePrivileges(t)
	pid := os.Getpid()
	w := &testWorld{
		p:          fmt.Sprintf("t%d", pid),
		nsA:        fmt.Sprintf("nta-t-%d-a", pid),
		nsB:        fmt.Sprintf("nta-t-%d-b", pid),
		dockerDir:  t.TempDir(),
		dockerBase: fmt.Sprintf("dock%d", pid),
		peers:      map[[2]string][2]string{},
		parents:    map[[2]string][2]string{},
	}
	p, A, B := w.p, w.nsA, w.nsB
	nsC := fmt.Sprintf("nta-t-%d-c", pid)
	idA, idB, idC := "named:"+A, "named:"+B, "docker:"+w.dockerBase
	addNetns(t, A)
	addNetns(t, B)
	addNetns(t, nsC)

	// Host bridges joined by a veth pair.
	for _, br := range []string{p + "ba", p + "bb"} {
		run(t, "ip", "link", "add", br, "type", "bridge")
		cleanup(t, "ip", "link", "del", br)
		run(t, "ip", "link", "set", br, "addrgenmode", "none", "up")
	}
	// Two veth pairs make a loop that kernel STP breaks by blocking a port.
	for _, v := range []string{"x", "y"} {
		run(t, "ip", "link", "add", p+v+"0", "type", "veth", "peer", "name", p+v+"1")
		cleanup(t, "ip", "link", "del", p+v+"0")
		run(t, "ip", "link", "set", p+v+"0", "master", p+"ba", "addrgenmode", "none", "mtu", "1450", "up")
		run(t, "ip", "link", "set", p+v+"1", "master", p+"bb", "addrgenmode", "none", "mtu", "1450", "up")
		w.pair("host", p+v+"0", "host", p+v+"1")
	}
	for _, br := range []string{p + "ba", p + "bb"} {
		run(t, "ip", "link", "set", br, "type", "bridge", "stp_state", "1", "forward_delay", "200", "hello_time", "100")
	}

	// Host <-> named A, with addresses.
	run(t, "ip", "link", "add", p+"h0", "type", "veth", "peer", "name", "eth0", "netns", A)
	cleanup(t, "ip", "link", "del", p+"h0")
	run(t, "ip", "link", "set", p+"h0", "master", p+"ba", "addrgenmode", "none", "mtu", "1400", "up")
	run(t, "ip", "-n", A, "link", "set", "eth0", "addrgenmode", "none", "mtu", "1400", "address", "02:00:00:00:0a:02", "up")
	run(t, "ip", "-n", A, "addr", "add", "10.231.0.2/24", "dev", "eth0")
	run(t, "ip", "-n", A, "addr", "add", "fd0c:231::2/64", "dev", "eth0", "nodad")
	w.pair("host", p+"h0", idA, "eth0")

	// Named A <-> named B, B side in a bridge inside B.
	run(t, "ip", "-n", A, "link", "add", "ab0", "type", "veth", "peer", "name", "ba0", "netns", B)
	run(t, "ip", "-n", A, "link", "set", "ab0", "addrgenmode", "none", "up")
	run(t, "ip", "-n", A, "addr", "add", "10.232.0.1/24", "dev", "ab0")
	run(t, "ip", "-n", B, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", B, "link", "set", "br0", "addrgenmode", "none", "up")
	run(t, "ip", "-n", B, "addr", "add", "10.232.0.2/24", "dev", "br0")
	run(t, "ip", "-n", B, "link", "set", "ba0", "master", "br0", "addrgenmode", "none", "up")
	run(t, "ip", "-n", B, "tuntap", "add", "dev", "tap0", "mode", "tap")
	run(t, "ip", "-n", B, "link", "set", "tap0", "master", "br0")
	run(t, "ip", "-n", B, "tuntap", "add", "dev", "tun0", "mode", "tun")
	w.pair(idA, "ab0", idB, "ba0")

	// Stacked devices in B on a same-namespace veth pair.
	run(t, "ip", "-n", B, "link", "add", "p1", "type", "veth", "peer", "name", "p2")
	run(t, "ip", "-n", B, "link", "set", "p1", "addrgenmode", "none", "up")
	run(t, "ip", "-n", B, "link", "set", "p2", "addrgenmode", "none", "up")
	w.pair(idB, "p1", idB, "p2")
	run(t, "ip", "-n", B, "link", "add", "mv0", "link", "p1", "type", "macvlan", "mode", "bridge")
	w.parents[[2]string{idB, "mv0"}] = [2]string{idB, "p1"}
	run(t, "ip", "-n", B, "link", "add", "vx0", "type", "vxlan", "id", "42", "dev", "p1", "dstport", "4789")
	w.parents[[2]string{idB, "vx0"}] = [2]string{idB, "p1"}
	for _, opt := range []struct{ kind, name, parent string }{
		{"vlan", "p1.10", "p1"}, {"ipvlan", "ipv0", "p2"},
	} {
		args := []string{"ip", "-n", B, "link", "add", "link", opt.parent, "name", opt.name, "type", opt.kind}
		if opt.kind == "vlan" {
			args = append(args, "id", "10")
		}
		if _, err := try(args...); err != nil {
			t.Logf("optional %s device not supported by this kernel: %v", opt.kind, err)
			continue
		}
		w.optional = append(w.optional, opt.kind)
		w.parents[[2]string{idB, opt.name}] = [2]string{idB, opt.parent}
	}

	// "Docker" namespace C: a veth to the host bridge, a macvlan whose lower
	// device stays in B, then only a bind mount in dockerDir keeps it.
	run(t, "ip", "link", "add", p+"d0", "type", "veth", "peer", "name", "eth0", "netns", nsC)
	cleanup(t, "ip", "link", "del", p+"d0")
	run(t, "ip", "link", "set", p+"d0", "master", p+"ba", "addrgenmode", "none", "up")
	run(t, "ip", "-n", nsC, "link", "set", "eth0", "addrgenmode", "none", "up")
	run(t, "ip", "-n", B, "link", "add", "mvx", "link", "p2", "type", "macvlan", "mode", "bridge")
	run(t, "ip", "-n", B, "link", "set", "mvx", "netns", nsC)
	w.pair("host", p+"d0", idC, "eth0")
	w.parents[[2]string{idC, "mvx"}] = [2]string{idB, "p2"}
	mnt := filepath.Join(w.dockerDir, w.dockerBase)
	if err := os.WriteFile(mnt, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "--bind", "/var/run/netns/"+nsC, mnt)
	cleanup(t, "umount", mnt)
	run(t, "ip", "netns", "del", nsC)

	// An anonymous namespace held by a process.
	anon := exec.Command("unshare", "-n", "sleep", "300")
	if err := anon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { anon.Process.Kill(); anon.Wait() })
	w.anonPID = anon.Process.Pid
	w.anonIno = waitNetns(t, w.anonPID, "sleep")
	run(t, "ip", "link", "add", p+"u0", "type", "veth", "peer", "name", "eth0", "netns", strconv.Itoa(w.anonPID))
	cleanup(t, "ip", "link", "del", p+"u0")
	run(t, "ip", "link", "set", p+"u0", "master", p+"ba", "addrgenmode", "none")
	w.pair("host", p+"u0", "ino:"+strconv.FormatUint(w.anonIno, 10), "eth0")

	// A process living in named A.
	owner := exec.Command("ip", "netns", "exec", A, "sleep", "300")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Process.Kill(); owner.Wait() })
	w.ownerPID = owner.Process.Pid
	waitNetns(t, w.ownerPID, "sleep")

	return w
}

// setPortStates puts a port of B's bridge (STP off) in state learning,
// which sticks until its carrier changes: call it once carriers settled.
func (w *testWorld) setPortStates(t *testing.T) {
	run(t, "ip", "netns", "exec", w.nsB, "bridge", "link", "set", "dev", "ba0", "state", "2")
}

// waitSTP waits until STP on the host bridges converged: no port listening
// or learning, one blocking.
func (w *testWorld) waitSTP(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		states := map[string]int{}
		for name, port := range readIP(t).ports {
			if strings.HasPrefix(name, w.p) {
				states[port.State]++
			}
		}
		if states["listening"] == 0 && states["learning"] == 0 && states["blocking"] == 1 {
			return
		}
	}
	t.Fatal("STP on the test bridges did not converge")
}

func (w *testWorld) pair(ns1, n1, ns2, n2 string) {
	w.peers[[2]string{ns1, n1}] = [2]string{ns2, n2}
	w.peers[[2]string{ns2, n2}] = [2]string{ns1, n1}
}

// waitNetns waits until pid runs comm in a namespace other than ours and
// returns that namespace's inode.
func waitNetns(t testing.TB, pid int, comm string) uint64 {
	t.Helper()
	self := ino(t, "/proc/self/ns/net")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(b)) != comm {
			continue
		}
		if n, err := InodeOf(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && n != self {
			return n
		}
	}
	t.Fatalf("pid %d did not start %s in a new namespace", pid, comm)
	return 0
}

// views returns the namespaces of the world with a command prefix entering
// each.
func (w *testWorld) views() map[string][]string {
	return map[string][]string{
		"host":                         nil,
		"named:" + w.nsA:               {"ip", "netns", "exec", w.nsA},
		"named:" + w.nsB:               {"ip", "netns", "exec", w.nsB},
		"docker:" + w.dockerBase:       {"nsenter", "--net=" + filepath.Join(w.dockerDir, w.dockerBase)},
		"ino:" + fmt.Sprint(w.anonIno): {"nsenter", "-t", strconv.Itoa(w.anonPID), "-n"},
	}
}

// sendTraffic sends UDP datagrams from named A to B's bridge address, so
// counters of ab0 (A) and ba0 (B) move.
func sendTraffic(t *testing.T, nsName string, n int) {
	t.Helper()
	target, err := netns.GetFromName(nsName)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	conn, err := func() (net.PacketConn, error) {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		c, derr := net.ListenPacket("udp4", ":0")
		if err := netns.Set(orig); err != nil {
			return nil, err // leave the thread locked: the runtime discards it
		}
		runtime.UnlockOSThread()
		return c, derr
	}()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Unconnected, so ICMP port unreachable does not fail later writes. The
	// first datagram waits for ARP, which may drop followers.
	dst := &net.UDPAddr{IP: net.IP{10, 232, 0, 2}, Port: 9}
	msg := []byte("nta hostnet test")
	conn.WriteTo(msg, dst)
	time.Sleep(200 * time.Millisecond)
	for range n {
		if _, err := conn.WriteTo(msg, dst); err != nil {
			t.Fatal(err)
		}
	}
}
