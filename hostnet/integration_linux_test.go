//go:build linux

package hostnet

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// testWorld is a topology built by the integration test:
//
//	host:   <p>ba (bridge) ports <p>x0, <p>h0, <p>d0 (blocking), <p>u0 (down)
//	        <p>bb (bridge) port  <p>x1 (learning)      <p>x0 <-> <p>x1 veth
//	named A: eth0 (peer <p>h0), ab0 (peer ba0 in B)
//	named B: br0 (bridge) ports ba0, tap0 (down); p1 <-> p2 veth; mv0 macvlan
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
	run(t, "ip", "link", "add", p+"x0", "type", "veth", "peer", "name", p+"x1")
	cleanup(t, "ip", "link", "del", p+"x0")
	run(t, "ip", "link", "set", p+"x0", "master", p+"ba", "addrgenmode", "none", "mtu", "1450", "up")
	run(t, "ip", "link", "set", p+"x1", "master", p+"bb", "addrgenmode", "none", "mtu", "1450", "up")
	w.pair("host", p+"x0", "host", p+"x1")

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

	// Bridge port states other than forwarding (STP is off, so they stick).
	run(t, "bridge", "link", "set", "dev", p+"d0", "state", "4")
	run(t, "bridge", "link", "set", "dev", p+"x1", "state", "2")
	return w
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
	conn, err := func() (net.Conn, error) {
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
		c, derr := net.Dial("udp4", "10.232.0.2:9")
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
	for range n {
		conn.Write([]byte("nta hostnet test"))
	}
}

func TestScanMatchesIproute2(t *testing.T) {
	w := buildWorld(t)
	sendTraffic(t, w.nsA, 5)
	views := w.views()
	waitSettled(t, func() string {
		var b strings.Builder
		for _, id := range slices.Sorted(maps.Keys(views)) {
			v := readIP(t, views[id]...)
			for _, name := range slices.Sorted(maps.Keys(v.links)) {
				if id != "host" || strings.HasPrefix(name, w.p) {
					fmt.Fprintf(&b, "%s/%s %s %s;", id, name, v.links[name].Operstate, v.ports[name].State)
				}
			}
		}
		return b.String()
	})

	s := NewScanner(Options{NetnsDirs: []string{"/var/run/netns", w.dockerDir}})
	snap, err := s.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range snap.Errors {
		t.Logf("snapshot error: %v", e)
	}
	w.checkNamespaces(t, snap)
	for id, enter := range views {
		w.compareLinks(t, snap, id, readIP(t, enter...))
	}
	w.checkPeersAndParents(t, snap)

	// States we set must be seen, so every state path is exercised.
	states := map[string]bool{}
	for _, l := range snap.Links {
		states[l.STPState] = true
	}
	for _, st := range []string{"forwarding", "blocking", "learning", "disabled"} {
		if !states[st] {
			t.Errorf("no bridge port in state %s", st)
		}
	}
	if l, _ := snap.Link("named:"+w.nsA, "ab0"); l.Stats.TxPackets < 5 {
		t.Errorf("ab0 stats %+v: want >= 5 tx packets", l.Stats)
	}
	if l, _ := snap.Link("named:"+w.nsB, "ba0"); l.Stats.RxPackets < 5 {
		t.Errorf("ba0 stats %+v: want >= 5 rx packets", l.Stats)
	}

	// A second scan answers from the netnsid cache and must agree.
	snap2, err := s.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.checkPeersAndParents(t, snap2)
}

func (w *testWorld) checkNamespaces(t *testing.T, snap *Snapshot) {
	t.Helper()
	if snap.Namespaces[0].ID != HostID {
		t.Errorf("first namespace %q, want host", snap.Namespaces[0].ID)
	}
	if !slices.IsSortedFunc(snap.Namespaces, func(a, b Namespace) int { return compareNetns(a.ID, b.ID) }) {
		t.Error("namespaces not sorted")
	}
	if !slices.IsSortedFunc(snap.Links, compareLinks) {
		t.Error("links not sorted")
	}
	for _, tc := range []struct {
		id, kind, name, path string
		ownerPID             int
	}{
		{"named:" + w.nsA, KindNamed, w.nsA, "/var/run/netns/" + w.nsA, w.ownerPID},
		{"named:" + w.nsB, KindNamed, w.nsB, "/var/run/netns/" + w.nsB, 0},
		{"docker:" + w.dockerBase, KindDocker, w.dockerBase, filepath.Join(w.dockerDir, w.dockerBase), 0},
		{"ino:" + fmt.Sprint(w.anonIno), KindProcess, "", fmt.Sprintf("/proc/%d/ns/net", w.anonPID), w.anonPID},
	} {
		ns, ok := snap.Namespace(tc.id)
		if !ok {
			t.Errorf("namespace %s missing", tc.id)
			continue
		}
		want, err := InodeOf(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if ns.Kind != tc.kind || ns.Name != tc.name || ns.Path != tc.path || ns.Inode != want || ns.OwnerPID != tc.ownerPID {
			t.Errorf("namespace %s = %+v, want kind %s name %q path %s inode %d owner %d",
				tc.id, ns, tc.kind, tc.name, tc.path, want, tc.ownerPID)
		}
		if tc.ownerPID != 0 && ns.OwnerComm != "sleep" {
			t.Errorf("namespace %s owner comm %q, want sleep", tc.id, ns.OwnerComm)
		}
		if byIno, ok := snap.NamespaceByInode(want); !ok || byIno.ID != tc.id {
			t.Errorf("NamespaceByInode(%d) = %s", want, byIno.ID)
		}
	}
	host, _ := snap.Namespace(HostID)
	if self := ino(t, "/proc/self/ns/net"); host.Inode != self {
		t.Errorf("host inode %d, but the test runs in %d", host.Inode, self)
	}
}

// compareLinks checks every link iproute2 sees in namespace id against the
// snapshot. In the host only links of this test are compared strictly:
// other tests may be changing theirs meanwhile.
func (w *testWorld) compareLinks(t *testing.T, snap *Snapshot, id string, v ipView) {
	t.Helper()
	got := snap.LinksIn(id)
	if id != HostID && len(got) != len(v.links) {
		var names []string
		for _, l := range got {
			names = append(names, l.Name)
		}
		t.Errorf("%s: snapshot has %d links %v, ip shows %d", id, len(got), names, len(v.links))
	}
	for name, il := range v.links {
		strict := id != HostID || strings.HasPrefix(name, w.p) || name == "lo"
		l, ok := snap.Link(id, name)
		if !ok {
			if strict {
				t.Errorf("%s/%s: missing from snapshot", id, name)
			}
			continue
		}
		if l.Index != il.Ifindex || l.Kind != il.kind() {
			t.Errorf("%s/%s: index %d kind %q, ip says %d %q", id, name, l.Index, l.Kind, il.Ifindex, il.kind())
		}
		if !strict {
			continue
		}
		check := func(what string, got, want any) {
			if got != want {
				t.Errorf("%s/%s: %s = %v, ip says %v", id, name, what, got, want)
			}
		}
		check("MAC", l.MAC, il.mac())
		check("MTU", l.MTU, il.MTU)
		check("OperState", l.OperState, strings.ToLower(il.Operstate))
		check("Master", l.Master, il.Master)
		check("MasterKind", l.MasterKind, il.Linkinfo.InfoSlaveKind)
		check("STPState", l.STPState, v.ports[name].State)
		if l.Kind == "veth" {
			peer := il.LinkIndex
			if il.Link != "" {
				peer = v.links[il.Link].Ifindex
			}
			check("PeerIndex", l.PeerIndex, peer)
		}
		wantAddrs := v.addrs[name]
		slices.SortFunc(wantAddrs, func(a, b Addr) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
		gotAddrs := slices.Clone(l.Addrs)
		slices.SortFunc(gotAddrs, func(a, b Addr) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
		if !slices.Equal(gotAddrs, wantAddrs) {
			t.Errorf("%s/%s: addrs %v, ip says %v", id, name, gotAddrs, wantAddrs)
		}
		// Counters only grow, and iproute2 read after the scan.
		is, ss := il.Stats64, l.Stats
		for _, c := range [][2]uint64{
			{ss.RxBytes, is.Rx.Bytes}, {ss.RxPackets, is.Rx.Packets}, {ss.RxErrors, is.Rx.Errors}, {ss.RxDropped, is.Rx.Dropped},
			{ss.TxBytes, is.Tx.Bytes}, {ss.TxPackets, is.Tx.Packets}, {ss.TxErrors, is.Tx.Errors}, {ss.TxDropped, is.Tx.Dropped},
		} {
			if c[0] > c[1] {
				t.Errorf("%s/%s: stats %+v exceed ip's later reading %+v", id, name, ss, is)
				break
			}
		}
	}
}

func (w *testWorld) checkPeersAndParents(t *testing.T, snap *Snapshot) {
	t.Helper()
	for end, want := range w.peers {
		l, ok := snap.Link(end[0], end[1])
		if !ok {
			t.Errorf("%v: missing", end)
			continue
		}
		if got := [2]string{l.PeerNetns, l.PeerName}; got != want {
			t.Errorf("%s/%s: peer %v, want %v", end[0], end[1], got, want)
		}
	}
	for dev, want := range w.parents {
		l, ok := snap.Link(dev[0], dev[1])
		if !ok {
			t.Errorf("%v: missing", dev)
			continue
		}
		if got := [2]string{l.ParentNetns, l.Parent}; got != want {
			t.Errorf("%s/%s: parent %v, want %v", dev[0], dev[1], got, want)
		}
		if pl, _ := snap.Link(want[0], want[1]); l.ParentIndex != pl.Index {
			t.Errorf("%s/%s: parent index %d, want %d", dev[0], dev[1], l.ParentIndex, pl.Index)
		}
	}
}
