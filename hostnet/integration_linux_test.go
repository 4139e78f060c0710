//go:build linux

package hostnet

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestScanMatchesIproute2(t *testing.T) {
	w := buildWorld(t)
	sendTraffic(t, w.nsA, 5)
	views := w.views()
	settle := func() string {
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
	}
	w.waitSTP(t)
	waitSettled(t, settle)
	w.setPortStates(t)
	waitSettled(t, settle)

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
		if l.Index != il.Ifindex || l.Kind != ipKind(il) {
			t.Errorf("%s/%s: index %d kind %q, ip says %d %q", id, name, l.Index, l.Kind, il.Ifindex, ipKind(il))
		}
		if !strict {
			continue
		}
		check := func(what string, got, want any) {
			if got != want {
				t.Errorf("%s/%s: %s = %v, ip says %v", id, name, what, got, want)
			}
		}
		check("MAC", l.MAC, ipMAC(il))
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
