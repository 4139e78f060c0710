//go:build linux

package hostnet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeHost is a procfs and netns directories made of plain files: hard links
// stand for two paths opening the same namespace, since discovery only looks
// at inodes. It runs without privileges.
type fakeHost struct {
	t                      *testing.T
	root, proc, named, dkr string
}

func newFakeHost(t *testing.T) *fakeHost {
	root := t.TempDir()
	f := &fakeHost{t: t, root: root, proc: filepath.Join(root, "proc"),
		named: filepath.Join(root, "netns"), dkr: filepath.Join(root, "docker-netns")}
	for _, d := range []string{f.proc, f.named, f.dkr, filepath.Join(root, "ns")} {
		f.mkdir(d)
	}
	return f
}

func (f *fakeHost) mkdir(d string) {
	if err := os.MkdirAll(d, 0o755); err != nil {
		f.t.Fatal(err)
	}
}

// ns creates a namespace file and returns its path.
func (f *fakeHost) ns(name string) string {
	p := filepath.Join(f.root, "ns", name)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fakeHost) link(target, path string) {
	f.mkdir(filepath.Dir(path))
	if err := os.Link(target, path); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeHost) proc1(pid string, ns, comm string) {
	if ns != "" {
		f.link(ns, filepath.Join(f.proc, pid, "ns/net"))
	}
	f.mkdir(filepath.Join(f.proc, pid))
	if comm != "" {
		if err := os.WriteFile(filepath.Join(f.proc, pid, "comm"), []byte(comm+"\n"), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

func ino(t testing.TB, path string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestDiscoverPriorityAndOwners(t *testing.T) {
	f := newFakeHost(t)
	host, self, named, anon, dock := f.ns("host"), f.ns("self"), f.ns("foo"), f.ns("anon"), f.ns("dock")
	f.proc1("self", self, "")
	f.proc1("1", host, "systemd")
	f.proc1("2", host, "kthreadd")
	f.proc1("1000", anon, "worker") // numerically after 200: 200 owns anon
	f.proc1("200", anon, "nginx")
	f.proc1("300", named, "sleep")
	f.proc1("400", "", "zombie") // no ns/net: exited
	f.mkdir(filepath.Join(f.proc, "sys"))
	f.link(named, filepath.Join(f.named, "foo"))
	f.link(named, filepath.Join(f.dkr, "abc123")) // named beats docker
	f.link(host, filepath.Join(f.dkr, "default")) // host beats docker
	f.link(dock, filepath.Join(f.dkr, "def456"))
	f.mkdir(filepath.Join(f.named, "subdir")) // ignored

	s := NewScanner(Options{ProcPath: f.proc, NetnsDirs: []string{f.named, f.dkr, filepath.Join(f.root, "absent")}})
	d, err := s.discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.errs) != 0 {
		t.Errorf("errors: %v", d.errs)
	}
	if d.selfIno != ino(t, self) {
		t.Errorf("selfIno = %d, want %d", d.selfIno, ino(t, self))
	}
	anonID := "ino:" + strconv.FormatUint(ino(t, anon), 10)
	want := []Namespace{
		{ID: "host", Kind: "host", Inode: ino(t, host), Path: filepath.Join(f.proc, "1/ns/net"), OwnerPID: 1, OwnerComm: "systemd"},
		{ID: "docker:def456", Name: "def456", Kind: "docker", Inode: ino(t, dock), Path: filepath.Join(f.dkr, "def456")},
		{ID: anonID, Kind: "process", Inode: ino(t, anon), Path: filepath.Join(f.proc, "200/ns/net"), OwnerPID: 200, OwnerComm: "nginx"},
		{ID: "named:foo", Name: "foo", Kind: "named", Inode: ino(t, named), Path: filepath.Join(f.named, "foo"), OwnerPID: 300, OwnerComm: "sleep"},
	}
	if len(d.namespaces) != len(want) {
		t.Fatalf("namespaces = %+v, want %+v", d.namespaces, want)
	}
	for i := range want {
		if d.namespaces[i] != want[i] {
			t.Errorf("namespace %d = %+v, want %+v", i, d.namespaces[i], want[i])
		}
	}
	snap := &Snapshot{Namespaces: d.namespaces}
	if ns, ok := snap.NamespaceByInode(ino(t, named)); !ok || ns.ID != "named:foo" {
		t.Errorf("NamespaceByInode(foo) = %+v, %v", ns, ok)
	}
	if ns, ok := snap.Namespace(anonID); !ok || ns.OwnerComm != "nginx" {
		t.Errorf("Namespace(%s) = %+v, %v", anonID, ns, ok)
	}
}

func TestDiscoverHostFallbacks(t *testing.T) {
	f := newFakeHost(t)
	host, self := f.ns("host"), f.ns("self")
	f.proc1("self", self, "")
	// pid 1 not inspectable; pid 2 is kthreadd, a kernel thread.
	f.proc1("2", host, "kthreadd")
	stat := "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 19 0\n"
	if err := os.WriteFile(filepath.Join(f.proc, "2/stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	s := NewScanner(Options{ProcPath: f.proc, NetnsDirs: []string{}})
	d, err := s.discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.errs) != 0 || len(d.namespaces) != 1 || d.namespaces[0].Inode != ino(t, host) ||
		d.namespaces[0].Path != filepath.Join(f.proc, "2/ns/net") {
		t.Errorf("kthreadd fallback: %+v, errs %v", d.namespaces, d.errs)
	}

	// A pid 2 that is not a kernel thread (a PID namespace) is not trusted:
	// the scanner's own namespace becomes "host", with an error saying so.
	if err := os.WriteFile(filepath.Join(f.proc, "2/stat"), []byte("2 (kthreadd) S 0 0 0 0 -1 4194560 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err = s.discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.errs) != 1 || d.namespaces[0].ID != HostID || d.namespaces[0].Inode != ino(t, self) {
		t.Errorf("self fallback: %+v, errs %v", d.namespaces, d.errs)
	}
	var nerr *NamespaceError
	if !errors.As(d.errs[0], &nerr) || nerr.ID != HostID {
		t.Errorf("error %v is not a host NamespaceError", d.errs[0])
	}

	// Without even /proc/self/ns/net there is nothing to scan.
	if _, err := NewScanner(Options{ProcPath: filepath.Join(f.root, "nope")}).discover(context.Background()); err == nil {
		t.Error("no procfs: no error")
	}
}

func TestIsKthread(t *testing.T) {
	for in, want := range map[string]bool{
		"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0":    true,
		"77 (a) b) (c) S 1 77 77 0 -1 4194560 0 0": false,
		"77 (a) b) (c) S 1 77 77 0 -1 2097152 0 0": true,
		"garbage":          false,
		"2 (kthreadd) S 0": false,
	} {
		if got := isKthread([]byte(in)); got != want {
			t.Errorf("isKthread(%q) = %v", in, got)
		}
	}
}

func TestInodeOfRejectsPlainFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := InodeOf(p); err == nil {
		t.Error("plain file accepted as a namespace")
	}
	if _, err := InodeOf(p + "-missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	got, err := InodeOf("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if want := ino(t, "/proc/self/ns/net"); got != want {
		t.Errorf("InodeOf(/proc/self/ns/net) = %d, want %d", got, want)
	}
}

func TestParseStatStateFlags(t *testing.T) {
	for _, c := range []struct {
		line  string
		state byte
		flags uint64
		ok    bool
	}{
		{"1234 (sleep) S 1 1234 1234 0 -1 4194560 99 0 0 0", 'S', 4194560, true},
		{"77 (a b) c)) Z 1 77 77 0 -1 4194308 0 0", 'Z', 4194308, true},
		{"78 (exiting) R 1 78 78 0 -1 4194564 0 0", 'R', 4194564, true}, // PF_EXITING set
		{"79 (short) S 1", 0, 0, false},
		{"no parenthesis", 0, 0, false},
	} {
		state, flags, ok := parseStatStateFlags([]byte(c.line))
		if state != c.state || flags != c.flags || ok != c.ok {
			t.Errorf("%q: %c %d %v, want %c %d %v", c.line, state, flags, ok, c.state, c.flags, c.ok)
		}
	}
	if _, flags, _ := parseStatStateFlags([]byte("78 (exiting) R 1 78 78 0 -1 4194564 0 0")); flags&pfExiting == 0 {
		t.Error("PF_EXITING not seen")
	}
}
