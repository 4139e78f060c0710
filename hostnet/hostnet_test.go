package hostnet

import (
	"slices"
	"testing"
)

func TestSnapshotLookups(t *testing.T) {
	s := &Snapshot{
		Namespaces: []Namespace{{ID: "host", Inode: 1}, {ID: "docker:abc", Inode: 7}, {ID: "named:x", Inode: 9}},
		Links: []Link{
			{Netns: "host", Name: "eth0", Index: 2},
			{Netns: "host", Name: "lo", Index: 1},
			{Netns: "docker:abc", Name: "eth0", Index: 5},
		},
	}
	if ns, ok := s.Namespace("docker:abc"); !ok || ns.Inode != 7 {
		t.Errorf("Namespace(docker:abc) = %+v, %v", ns, ok)
	}
	if _, ok := s.Namespace("named:y"); ok {
		t.Error("Namespace(named:y) found")
	}
	if ns, ok := s.NamespaceByInode(9); !ok || ns.ID != "named:x" {
		t.Errorf("NamespaceByInode(9) = %+v, %v", ns, ok)
	}
	if _, ok := s.NamespaceByInode(3); ok {
		t.Error("NamespaceByInode(3) found")
	}
	if got := s.LinksIn("host"); len(got) != 2 || got[0].Name != "eth0" || got[1].Name != "lo" {
		t.Errorf("LinksIn(host) = %+v", got)
	}
	if got := s.LinksIn("named:x"); len(got) != 0 {
		t.Errorf("LinksIn(named:x) = %+v", got)
	}
	if l, ok := s.Link("docker:abc", "eth0"); !ok || l.Index != 5 {
		t.Errorf("Link(docker:abc, eth0) = %+v, %v", l, ok)
	}
	if _, ok := s.Link("named:x", "eth0"); ok {
		t.Error("Link(named:x, eth0) found")
	}
}

func TestOrdering(t *testing.T) {
	ids := []string{"named:a", "ino:5", "host", "docker:z", "docker:a"}
	slices.SortFunc(ids, compareNetns)
	if want := []string{"host", "docker:a", "docker:z", "ino:5", "named:a"}; !slices.Equal(ids, want) {
		t.Errorf("sorted ids = %v, want %v", ids, want)
	}
	links := []Link{{Netns: "named:a", Name: "eth0"}, {Netns: "host", Name: "veth1"}, {Netns: "host", Name: "br0"}, {Netns: "docker:a", Name: "lo"}}
	slices.SortFunc(links, compareLinks)
	var got []string
	for _, l := range links {
		got = append(got, l.Netns+"/"+l.Name)
	}
	if want := []string{"host/br0", "host/veth1", "docker:a/lo", "named:a/eth0"}; !slices.Equal(got, want) {
		t.Errorf("sorted links = %v, want %v", got, want)
	}
}

func TestNewScannerDefaults(t *testing.T) {
	s := NewScanner(Options{})
	if s.proc != "/proc" || !slices.Equal(s.dirs, []string{"/var/run/netns", "/var/run/docker/netns"}) || s.workers != 4 || s.log == nil {
		t.Errorf("defaults: proc %q dirs %v workers %d", s.proc, s.dirs, s.workers)
	}
	s = NewScanner(Options{ProcPath: "/host/proc", NetnsDirs: []string{}, Workers: 1})
	if s.proc != "/host/proc" || len(s.dirs) != 0 || s.workers != 1 {
		t.Errorf("options ignored: proc %q dirs %v workers %d", s.proc, s.dirs, s.workers)
	}
}
