// Package natview keeps a view of the host's north-south traffic through
// Docker's NAT, read from the kernel's connection tracking (nf_conntrack over
// ctnetlink): an initial dump, then NEW/UPDATE/DESTROY events, and a periodic
// re-dump that picks up the counters of live connections and repairs
// anything lost (a receive error re-dials and re-dumps at once).
//
// Every NAT'd connection is attributed once to a container (nothing is
// resolved per packet):
//
//   - ingress: the original destination is a host address at a published
//     port and the reply source is the container's address (DNAT);
//   - egress: the original source is a container's address and source NAT
//     (SNAT/MASQUERADE) was applied.
//
// Counters are exact and monotonic: the final counters of destroyed
// connections plus the deltas of live ones between reads; a connection seen
// in a dump and then in an event, or in two dumps, is counted once. nta never
// zeroes the kernel's counters (other tools read them too).
//
// A scrape reads [Watcher.Snapshot] and never talks to the kernel besides
// reading two /proc files.
package natview

import (
	"errors"
	"log/slog"
	"net/netip"
	"strconv"
	"time"
)

// Direction of a NAT'd connection as seen from the container.
const (
	Ingress = "ingress" // a client outside reached a published port (DNAT)
	Egress  = "egress"  // the container reached outside (SNAT/MASQUERADE)
)

// OverflowPeer is the peer label of the series that holds the peers folded
// away by the per-container budget.
const OverflowPeer = "overflow"

// ErrUnavailable is wrapped by [Watcher.Snapshot] errors while conntrack
// cannot be read (module not loaded, no CAP_NET_ADMIN, not dumped yet); the
// error text says what to do.
var ErrUnavailable = errors.New("conntrack unavailable")

// Workload kinds.
const (
	KindContainer = "container" // a Docker container: ID is its full id
	KindVM        = "vm"        // a libvirt domain: ID is its UUID, Name the domain name
)

// Container names a workload that owns addresses: a Docker container or a
// libvirt VM (Kind).
type Container struct {
	ID   string // full container id, or the VM's UUID
	Name string
	Kind string // KindContainer or KindVM; "" is KindContainer
}

// Port is a published port: HostIP:HostPort/Proto is DNAT'd to the
// container's ContainerPort.
type Port struct {
	Container     Container
	HostIP        netip.Addr // invalid or unspecified (0.0.0.0, ::) means every host address of that family
	HostPort      uint16
	ContainerPort uint16
	Proto         uint8 // IP protocol number: 6 tcp, 17 udp, 132 sctp
}

// Endpoints is what attribution needs to know about the host.
type Endpoints struct {
	// Containers maps every container address (IPv4 and IPv6) to its container.
	Containers map[netip.Addr]Container
	// Ports are the published ports.
	Ports []Port
	// HostAddrs are the host's own addresses; nil skips the check that an
	// ingress connection's original destination is one of them.
	HostAddrs map[netip.Addr]bool
}

// Resolver supplies [Endpoints]; the Docker and libvirt views do in
// production ([ViewsResolver]), a literal in tests.
type Resolver interface {
	// Endpoints returns the current container addresses, published ports and
	// host addresses.
	Endpoints() (Endpoints, error)
}

// Counters are bytes and packets of one direction of a connection.
type Counters struct {
	Bytes, Packets uint64
}

func (c *Counters) add(d Counters) {
	c.Bytes += d.Bytes
	c.Packets += d.Packets
}

// Series is one exported group of connections: a container, direction,
// protocol, published port (ingress) and peer.
type Series struct {
	Container Container
	Direction string // Ingress or Egress
	Proto     string // "tcp", "udp", "icmp", … or the protocol number
	HostIP    string // published host address ("0.0.0.0", "::"), "" for egress
	HostPort  uint16 // published host port, 0 for egress
	// Peer is the remote client's address (ingress), the remote
	// destination address:port (egress; the address alone for ICMP), or
	// [OverflowPeer].
	Peer string
	// Opened counts connections since start; Open is those open now.
	Opened uint64
	Open   int64
	// Received and Transmitted are from the container's point of view:
	// for ingress the original direction is what it received.
	Received, Transmitted Counters
}

// Health describes the source itself.
type Health struct {
	Accounting    bool          // net.netfilter.nf_conntrack_acct is 1: bytes and packets are counted
	Events        [3]uint64     // events applied: new, update, destroy
	ReceiveErrors uint64        // receive errors (ENOBUFS included) that forced a re-dial and re-dump
	EventsLost    uint64        // connections whose NEW or DESTROY the next dump had to make up for
	Dumps         uint64        // dumps done
	DumpDuration  time.Duration // last dump, attribution included
	Tracked       int           // NAT'd connections in the table (attributed or not)
	Unattributed  int           // of those, connections no container owns (yet)
	PeerBudget    int           // peers kept per container
	FoldedPeers   uint64        // peers folded into the overflow series
	Entries       float64       // /proc/sys/net/netfilter/nf_conntrack_count, -1 when unreadable
	Limit         float64       // nf_conntrack_max, -1 when unreadable
}

// Snapshot is one reading for a scrape; callers may keep and modify it.
type Snapshot struct {
	Series []Series // sorted by container, direction, proto, port, peer
	// Ports are the ingress totals per container and published port (Peer
	// ""): the sums of its peer and overflow series, which stay monotonic
	// when the budget folds a peer (in Prometheus the folded peer's series
	// vanishes and the overflow jumps, so a rate over the peers would bump).
	Ports  []Series
	Health Health
}

// Options configure a [Watcher].
type Options struct {
	// Resolver supplies container addresses and published ports. Required.
	Resolver Resolver
	// ProcPath is the procfs mountpoint; default /proc.
	ProcPath string
	// Resync is the interval of re-dumps that read live connections'
	// counters and repair lost events. Default 10s.
	Resync time.Duration
	// PeerBudget is the number of peer series kept per container, the rest
	// folded into peer="overflow". Default 64.
	PeerBudget int
	// ReadBuffer is the event socket's receive buffer in bytes (capped by
	// net.core.rmem_max). Default 8 MiB.
	ReadBuffer int
	// Accounting sets net.netfilter.nf_conntrack_acct=1 at start.
	Accounting bool
	// Logger receives state transitions; default slog.Default().
	Logger *slog.Logger
}

// Defaults for [Options].
const (
	DefaultResync     = 10 * time.Second
	DefaultPeerBudget = 64
	DefaultReadBuffer = 8 << 20
)

// IP protocol numbers nta names.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

// ProtoName returns the label of an IP protocol number.
func ProtoName(p uint8) string {
	switch p {
	case protoICMP:
		return "icmp"
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoICMPv6:
		return "icmpv6"
	case protoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// ProtoNumber is the inverse of ProtoName for the names Docker publishes
// ("tcp", "udp", "sctp"); 0 for anything else.
func ProtoNumber(name string) uint8 {
	switch name {
	case "tcp":
		return protoTCP
	case "udp":
		return protoUDP
	case "sctp":
		return protoSCTP
	}
	return 0
}
