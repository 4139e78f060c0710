//go:build linux

package hostnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// errVanished reports that a namespace file no longer refers to the namespace
// that was discovered (the process exited, the bind mount was removed, the pid
// was reused).
var errVanished = errors.New("namespace vanished")

// isVanished reports whether err means the namespace went away while it was
// being scanned: such races are expected and are not reported.
func isVanished(err error) bool {
	return errors.Is(err, errVanished) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
}

// isPermission reports whether err is a lack of privilege.
func isPermission(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}

// InodeOf returns the inode of the network namespace file at path (for
// example a Docker container's NetworkSettings.SandboxKey, or
// /proc/PID/ns/net), to be looked up with [Snapshot.NamespaceByInode].
func InodeOf(path string) (uint64, error) {
	var fsst unix.Statfs_t
	if err := unix.Statfs(path, &fsst); err != nil {
		return 0, fmt.Errorf("netns file %s: %w", path, &fs.PathError{Op: "statfs", Path: path, Err: err})
	}
	if uint32(fsst.Type) != uint32(unix.NSFS_MAGIC) {
		return 0, fmt.Errorf("%s is not a namespace file (not on nsfs): is the netns bind mount gone?", path)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("netns file %s: %w", path, &fs.PathError{Op: "stat", Path: path, Err: err})
	}
	return st.Ino, nil
}

// pfKthread is PF_KTHREAD from linux/sched.h, in field 9 of /proc/PID/stat.
const pfKthread = 0x00200000

// hostNetns stats the host namespace: /proc/1/ns/net, or when pid 1 may not
// be inspected (some sandboxes and LSMs forbid it even to root) the one of
// kthreadd, pid 2, which as a kernel thread always lives in the initial
// namespace. It returns the path it tried first on failure.
func (s *Scanner) hostNetns(st *unix.Stat_t) (string, error) {
	path := filepath.Join(s.proc, "1/ns/net")
	err := unix.Stat(path, st)
	if err == nil {
		return path, nil
	}
	if b, rerr := os.ReadFile(filepath.Join(s.proc, "2/stat")); rerr == nil && isKthread(b) {
		p2 := filepath.Join(s.proc, "2/ns/net")
		if unix.Stat(p2, st) == nil {
			return p2, nil
		}
	}
	return path, err
}

// isKthread reports whether a /proc/PID/stat line is a kernel thread's.
func isKthread(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&pfKthread != 0
}

// kindRank orders namespace kinds: a lower rank wins when one namespace is
// reachable in several ways.
func kindRank(kind string) int {
	switch kind {
	case KindHost:
		return 0
	case KindNamed:
		return 1
	case KindDocker:
		return 2
	}
	return 3
}

// discovery is the result of walking netns directories and /proc.
type discovery struct {
	namespaces []Namespace // sorted, host first
	selfIno    uint64      // namespace of the scanner itself
	errs       []error
}

// discover finds every network namespace of the host. It fails only when
// neither /proc/1/ns/net nor /proc/self/ns/net can be read.
func (s *Scanner) discover(ctx context.Context) (*discovery, error) {
	d := &discovery{}
	var self, host unix.Stat_t
	selfPath := filepath.Join(s.proc, "self/ns/net")
	if err := unix.Stat(selfPath, &self); err != nil {
		return nil, fmt.Errorf("read own network namespace %s: %w — is procfs mounted at %s?", selfPath, err, s.proc)
	}
	d.selfIno = self.Ino

	hostPath, herr := s.hostNetns(&host)
	if herr != nil {
		// Unprivileged: treat our own namespace as the host, which is right
		// for an exporter run with --net=host or as a host service.
		d.errs = append(d.errs, &NamespaceError{ID: HostID, Path: hostPath, Err: fmt.Errorf(
			"%w — run as root or grant CAP_SYS_PTRACE; using the exporter's own namespace as host", herr)})
		host, hostPath = self, selfPath
	}
	byIno := map[uint64]*Namespace{host.Ino: {ID: HostID, Kind: KindHost, Inode: host.Ino, Path: hostPath}}
	ids := map[string]bool{HostID: true}

	for i, dir := range s.dirs {
		if dir == "" {
			continue
		}
		kind := KindNamed
		if i == 1 {
			kind = KindDocker
		}
		s.readNetnsDir(dir, kind, host.Dev, byIno, ids, d)
	}
	if err := s.readProc(ctx, byIno, d); err != nil {
		return nil, err
	}

	d.namespaces = make([]Namespace, 0, len(byIno))
	for _, ns := range byIno {
		if ns.OwnerPID != 0 {
			ns.OwnerComm = s.comm(ns.OwnerPID)
			if ns.OwnerComm == "" { // exited meanwhile
				ns.OwnerPID = 0
			}
		}
		d.namespaces = append(d.namespaces, *ns)
	}
	slices.SortFunc(d.namespaces, func(a, b Namespace) int { return compareNetns(a.ID, b.ID) })
	return d, nil
}

// readNetnsDir adds the namespaces bind-mounted in dir. Files that are not on
// nsfs (dev differs from the host namespace's: a stale file whose mount is
// gone) are ignored.
func (s *Scanner) readNetnsDir(dir, kind string, nsfsDev uint64, byIno map[uint64]*Namespace, ids map[string]bool, d *discovery) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case isPermission(err):
			d.errs = append(d.errs, &NamespaceError{Path: dir, Err: fmt.Errorf("list %s namespaces: %w — run as root or grant CAP_DAC_READ_SEARCH (the directory is root's, mode 0700 for Docker); their namespaces show as ino:… meanwhile", kind, err)})
		default:
			d.errs = append(d.errs, &NamespaceError{Path: dir, Err: fmt.Errorf("list %s namespaces: %w", kind, err)})
		}
		return
	}
	var st unix.Stat_t
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := unix.Stat(path, &st); err != nil {
			if !isVanished(err) {
				d.errs = append(d.errs, &NamespaceError{Path: path, Err: err})
			}
			continue
		}
		if st.Dev != nsfsDev {
			s.log.Debug("ignoring netns file that is not a namespace mount", "path", path)
			continue
		}
		id := kind + ":" + e.Name()
		if ids[id] {
			continue // same name in a later named directory
		}
		if old, ok := byIno[st.Ino]; ok && kindRank(old.Kind) <= kindRank(kind) {
			continue
		} else if ok {
			delete(ids, old.ID)
		}
		ids[id] = true
		byIno[st.Ino] = &Namespace{ID: id, Name: e.Name(), Kind: kind, Inode: st.Ino, Path: path}
	}
}

// readProc walks /proc/PID/ns/net in pid order: it records the lowest pid of
// every known namespace as its owner and adds namespaces only reachable there.
func (s *Scanner) readProc(ctx context.Context, byIno map[uint64]*Namespace, d *discovery) error {
	f, err := os.Open(s.proc)
	if err != nil {
		return fmt.Errorf("list processes in %s: %w — is procfs mounted?", s.proc, err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("list processes in %s: %w", s.proc, err)
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)

	var (
		st     unix.Stat_t
		denied int
		buf    = make([]byte, 0, 64)
	)
	for i, pid := range pids {
		if i%512 == 0 && ctx.Err() != nil {
			return fmt.Errorf("scan processes: %w", ctx.Err())
		}
		buf = append(append(append(buf[:0], s.proc...), '/'), strconv.Itoa(pid)...)
		buf = append(buf, "/ns/net"...)
		if err := unix.Stat(string(buf), &st); err != nil {
			// pid 1 is often shielded; the host ns is found via pid 2. A
			// process in the middle of exiting also answers EACCES, even to
			// root: that is a lost race, not a missing privilege.
			if isPermission(err) && pid != 1 && !s.exitingOrGone(pid) {
				if err := unix.Stat(string(buf), &st); err != nil {
					denied++
					continue
				}
			} else {
				continue // exited, zombie or kernel thread without ns: skip
			}
		}
		ns, ok := byIno[st.Ino]
		if !ok {
			ns = &Namespace{ID: "ino:" + strconv.FormatUint(st.Ino, 10), Kind: KindProcess, Inode: st.Ino, Path: string(buf)}
			byIno[st.Ino] = ns
		}
		if ns.OwnerPID == 0 {
			ns.OwnerPID = pid
		}
	}
	if denied > 0 {
		d.errs = append(d.errs, &NamespaceError{Path: filepath.Join(s.proc, "*/ns/net"), Err: fmt.Errorf(
			"%d processes' namespaces not readable: %w — run as root or grant CAP_SYS_PTRACE", denied, fs.ErrPermission)})
	}
	return nil
}

// comm returns /proc/PID/comm without the newline, "" when unreadable.
func (s *Scanner) comm(pid int) string {
	b, err := os.ReadFile(filepath.Join(s.proc, strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// stillThere reports whether ns's path still refers to the namespace that
// was discovered. A read that failed in a namespace that is gone by now lost
// a race with its teardown (whatever errno the kernel chose for it), and is
// not a fault worth reporting.
func stillThere(ns Namespace) bool {
	var st unix.Stat_t
	return unix.Stat(ns.Path, &st) == nil && st.Ino == ns.Inode
}

// openNS opens the namespace and checks it is still the one discovered, so a
// recycled pid or a re-created bind mount is not mistaken for it.
func openNS(ns Namespace) (netns.NsHandle, error) {
	h, err := netns.GetFromPath(ns.Path)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		h.Close()
		return -1, err
	}
	if st.Ino != ns.Inode {
		h.Close()
		return -1, fmt.Errorf("%s: inode %d, want %d: %w", ns.Path, st.Ino, ns.Inode, errVanished)
	}
	return h, nil
}

// pfExiting is PF_EXITING in the flags field of /proc/PID/stat.
const pfExiting = 0x4

// exitingOrGone reports whether process pid has exited, is a zombie or is
// exiting (PF_EXITING), per /proc/PID/stat: its namespace files then answer
// EACCES or ENOENT whatever the reader's privileges.
func (s *Scanner) exitingOrGone(pid int) bool {
	b, err := os.ReadFile(filepath.Join(s.proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	state, flags, ok := parseStatStateFlags(b)
	return !ok || state == 'Z' || state == 'X' || state == 'x' || flags&pfExiting != 0
}

// parseStatStateFlags returns the state (field 3) and flags (field 9) of a
// /proc/PID/stat line; comm (field 2) may hold spaces and parentheses, so
// fields are counted from the last ')'.
func parseStatStateFlags(b []byte) (state byte, flags uint64, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return 0, 0, false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil || len(f[0]) != 1 {
		return 0, 0, false
	}
	return f[0][0], flags, true
}
