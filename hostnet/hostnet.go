// Package hostnet discovers every network namespace on a Linux host and every
// network interface (link) in each of them, for the nta topology exporter.
//
// A [Scanner] finds namespaces in three places: named ones bind-mounted under
// /var/run/netns (iproute2), Docker sandboxes under /var/run/docker/netns, and
// anonymous ones only reachable through /proc/PID/ns/net. Namespaces are
// deduplicated by the inode of their nsfs file. Inside each namespace the
// scanner reads links, addresses and rtnl_link_stats64 counters over rtnetlink
// (one dump per kind of object, never one request per link), the STP state of
// bridge ports (an AF_BRIDGE link dump), and resolves the peer of every veth
// across namespaces through the kernel's netnsid mapping.
//
// The package knows nothing about Docker beyond the directory its netns files
// live in; joining links to containers is the job of package topology.
//
// Reading other namespaces needs CAP_SYS_ADMIN (setns to open a netlink socket
// there) and, for namespaces of processes of other users, CAP_SYS_PTRACE; see
// [MissingCapabilities]. Without them Scan still reports the scanner's own
// namespace and records what it could not read in [Snapshot.Errors].
package hostnet

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
)

// Namespace kinds, in decreasing priority: when one namespace is reachable
// several ways, the highest-priority kind names it.
const (
	KindHost    = "host"
	KindNamed   = "named"
	KindDocker  = "docker"
	KindProcess = "process"
)

// HostID is the Namespace.ID of the host (initial) network namespace, the one
// of /proc/1/ns/net.
const HostID = "host"

// ErrNotSupported is returned on operating systems other than Linux.
var ErrNotSupported = errors.New("hostnet: network namespaces are only supported on Linux")

// Namespace is a network namespace found on the host.
type Namespace struct {
	ID        string // stable id: "host" | "named:<name>" | "docker:<basename>" | "ino:<inode>"
	Name      string // name for named/docker ones, "" for anonymous
	Kind      string // "host", "named", "docker", "process"
	Inode     uint64 // inode of the nsfs file (dedup key)
	Path      string // a path that opens it
	OwnerPID  int    // a process living in it, 0 when unknown
	OwnerComm string // that process's comm, "" when unknown
}

// Addr is an IP address configured on a link.
type Addr struct {
	Prefix netip.Prefix // address and prefix length, e.g. 10.0.0.2/24
	Family string       // "inet" | "inet6"
}

// Stats are the kernel's rtnl_link_stats64 counters of a link (interface's own
// point of view: for a veth, Rx is what its peer sent).
type Stats struct {
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// Link is one network interface in one namespace.
type Link struct {
	Netns string // Namespace.ID
	Name  string
	Index int
	// Kind is one of bridge, veth, tun, tap, vxlan, vlan, macvlan, ipvlan,
	// dummy, bond, openvswitch, physical, loopback, or else the raw kernel kind
	// (IFLA_INFO_KIND, e.g. "macvtap", "wireguard", "gre").
	Kind        string
	MAC         string // lower-case aa:bb:..; "" when none
	MTU         int
	OperState   string // "up","down","unknown","lowerlayerdown","notpresent","dormant","testing"
	MasterIndex int
	Master      string // master's name (same namespace), "" when none
	MasterKind  string // e.g. "bridge", "openvswitch", "bond"
	STPState    string // bridge ports only: disabled|listening|learning|forwarding|blocking
	Addrs       []Addr
	PeerIndex   int    // veth: ifindex of peer (in peer ns)
	PeerNetns   string // veth: Namespace.ID of the peer, "" when not resolvable
	PeerName    string // veth: name of the peer, "" when not resolvable
	// ParentIndex is the lower device of a vlan/macvlan/ipvlan/vxlan (or any
	// other stacked device reporting IFLA_LINK), 0 when none. The lower device
	// normally lives in the same namespace; when it does not (a macvlan moved
	// into a container) ParentNetns names its namespace.
	ParentIndex int
	Parent      string // name of the lower device, "" when none or not resolvable
	// ParentNetns is the Namespace.ID holding the lower device: equal to
	// Netns in the usual case, another namespace for devices moved away from
	// their lower device, "" when there is no parent or it is not resolvable.
	ParentNetns string
	Stats       Stats
}

// NamespaceError is a problem with one namespace that did not stop a scan.
type NamespaceError struct {
	ID   string // Namespace.ID, "" when the namespace could not be identified
	Path string // the path that was being read
	Err  error
}

// Error says which namespace and path failed, and why.
func (e *NamespaceError) Error() string {
	if e.ID == "" {
		return fmt.Sprintf("netns %s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("netns %s (%s): %v", e.ID, e.Path, e.Err)
}

// Unwrap returns the underlying error.
func (e *NamespaceError) Unwrap() error { return e.Err }

// Snapshot is one consistent-enough reading of the host: every namespace is
// read at a slightly different instant.
type Snapshot struct {
	Namespaces []Namespace // sorted by ID, "host" first
	// Links are sorted by (Netns, Name), namespaces in the order of
	// Namespaces ("host" first, then by ID).
	Links  []Link
	Errors []error // per-namespace problems that did not stop the scan (vanished ns, permission)
}

// Namespace returns the namespace with the given ID.
func (s *Snapshot) Namespace(id string) (Namespace, bool) {
	for _, ns := range s.Namespaces {
		if ns.ID == id {
			return ns, true
		}
	}
	return Namespace{}, false
}

// NamespaceByInode returns the namespace whose nsfs inode is ino, as returned
// by [InodeOf] for e.g. a Docker SandboxKey.
func (s *Snapshot) NamespaceByInode(ino uint64) (Namespace, bool) {
	for _, ns := range s.Namespaces {
		if ns.Inode == ino {
			return ns, true
		}
	}
	return Namespace{}, false
}

// LinksIn returns the links of one namespace, sorted by name. The result is a
// new slice, but Addrs are shared with the snapshot.
func (s *Snapshot) LinksIn(netns string) []Link {
	var out []Link
	for _, l := range s.Links {
		if l.Netns == netns {
			out = append(out, l)
		}
	}
	return out
}

// Link returns the link called name in namespace netns.
func (s *Snapshot) Link(netns, name string) (Link, bool) {
	for _, l := range s.Links {
		if l.Netns == netns && l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

// Options configure a Scanner. The zero value reads the real host.
type Options struct {
	ProcPath string // default "/proc"
	// NetnsDirs are directories of netns bind mounts. The first holds named
	// namespaces (IDs "named:<name>"), the second Docker sandboxes (IDs
	// "docker:<basename>"); any further ones are read as named. Default
	// {"/var/run/netns", "/var/run/docker/netns"}.
	NetnsDirs []string
	// Workers bounds how many namespaces are read concurrently; default 4.
	Workers int
	Logger  *slog.Logger // default: discard
}

// Scanner reads namespaces and links. It is safe for concurrent use; it keeps
// only a cache of netnsid mappings between scans.
type Scanner struct {
	proc    string
	dirs    []string
	workers int
	log     *slog.Logger

	// nsids caches netnsids, which the kernel never changes while both
	// namespaces live: viewer inode -> target inode -> the nsid viewer gave
	// target. Entries of namespaces gone from a scan are evicted.
	mu    sync.Mutex
	nsids map[uint64]map[uint64]int

	// warned holds the paths whose scan error was logged at warn; a path
	// is logged again only after a scan without its error. Guarded by mu.
	warned map[string]bool
}

// NewScanner returns a Scanner with defaults filled in.
func NewScanner(o Options) *Scanner {
	s := &Scanner{
		proc:    cmp.Or(o.ProcPath, "/proc"),
		dirs:    o.NetnsDirs,
		workers: o.Workers,
		log:     o.Logger,
		nsids:   make(map[uint64]map[uint64]int),
		warned:  make(map[string]bool),
	}
	if s.dirs == nil {
		s.dirs = []string{"/var/run/netns", "/var/run/docker/netns"}
	}
	if s.workers <= 0 {
		s.workers = 4
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// warnErrors logs each scan error at warn once: when its path first fails,
// again only after a scan in which it did not (nta_netns_scan_errors counts
// them on every scrape; the log says which and what to do).
func (s *Scanner) warnErrors(errs []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool, len(errs))
	for _, err := range errs {
		key := err.Error()
		var ne *NamespaceError
		if errors.As(err, &ne) {
			key = ne.Path
		}
		seen[key] = true
		if !s.warned[key] {
			s.warned[key] = true
			s.log.Warn("cannot read network namespaces, they are left out or shown as ino:… (nta_netns_scan_errors)", "err", err)
		}
	}
	for key := range s.warned {
		if !seen[key] {
			delete(s.warned, key)
		}
	}
}

// compareNetns orders namespace IDs: "host" first, then lexically.
func compareNetns(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == HostID:
		return -1
	case b == HostID:
		return 1
	}
	return cmp.Compare(a, b)
}

// compareLinks orders links by (Netns, Name) with compareNetns.
func compareLinks(a, b Link) int {
	return cmp.Or(compareNetns(a.Netns, b.Netns), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Index, b.Index))
}
