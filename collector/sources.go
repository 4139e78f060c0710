package collector

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/libvirtview"
	"github.com/tangfeixiong/nta/natview"
	"github.com/tangfeixiong/nta/ovsview"
	"github.com/tangfeixiong/nta/topology"
)

// HostSource is where collectors read the host's namespaces and links.
// [HostCache] implements it over a real scan; tests hand collectors a
// literal [hostnet.Snapshot].
type HostSource interface {
	// Snapshot returns a recent reading of the host. Callers must not
	// modify it.
	Snapshot(ctx context.Context) (*hostnet.Snapshot, error)
}

// DockerSource is the cached Docker view collectors read. It never calls
// the Engine API on a scrape. *dockerview.Watcher implements it.
type DockerSource interface {
	// View returns a copy of the cached view, or an error wrapping
	// dockerview.ErrUnavailable while Docker cannot be reached.
	View() (dockerview.View, error)
}

// LibvirtSource is the cached libvirt view collectors read. It never calls
// libvirtd on a scrape. *libvirtview.Watcher implements it.
type LibvirtSource interface {
	// View returns a copy of the cached view, or an error wrapping
	// libvirtview.ErrUnavailable while libvirtd cannot be reached.
	View() (libvirtview.View, error)
}

// OVSSource is the cached Open vSwitch view collectors read. It never
// calls ovsdb-server on a scrape. *ovsview.Watcher implements it.
type OVSSource interface {
	// View returns the cached view with the interfaces' latest statistics,
	// or an error wrapping ovsview.ErrUnavailable while OVSDB cannot be
	// reached.
	View() (ovsview.View, error)
}

// NATSource is the conntrack view collectors read. It never talks to the
// kernel on a scrape besides two /proc files. *natview.Watcher implements it.
type NATSource interface {
	// Snapshot returns the NAT series and health, or an error wrapping
	// natview.ErrUnavailable while conntrack cannot be read.
	Snapshot() (natview.Snapshot, error)
}

var (
	_ NATSource     = (*natview.Watcher)(nil)
	_ HostSource    = (*HostCache)(nil)
	_ DockerSource  = (*dockerview.Watcher)(nil)
	_ LibvirtSource = (*libvirtview.Watcher)(nil)
	_ OVSSource     = (*ovsview.Watcher)(nil)
)

// Need is a set of the sources collectors read. Each collector declares its
// needs when it registers; main starts only the sources [SourcesNeeded]
// reports for the enabled collectors.
type Need uint8

// The sources a collector can need, one bit each.
const (
	NeedHost    Need = 1 << iota // Sources.Host: the hostnet scan
	NeedDocker                   // Sources.Docker: the Docker watcher
	NeedFlows                    // Sources.Flows: the packet capture
	NeedLibvirt                  // Sources.Libvirt: the libvirt watcher
	NeedOVS                      // Sources.OVS: the OVSDB watcher
	NeedNAT                      // Sources.NAT: the conntrack watcher (its attribution reads the Docker watcher, which main then starts too)
)

// Has reports whether n includes every source of want.
func (n Need) Has(want Need) bool { return n&want == want }

// String lists the sources, e.g. "host,docker"; "none" for the empty set.
func (n Need) String() string {
	var out []string
	for _, s := range []struct {
		bit  Need
		name string
	}{{NeedHost, "host"}, {NeedDocker, "docker"}, {NeedLibvirt, "libvirt"}, {NeedOVS, "ovs"}, {NeedNAT, "nat"}, {NeedFlows, "flows"}} {
		if n.Has(s.bit) {
			out = append(out, s.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

// SourcesNeeded returns the sources the named collectors declared at
// registration. Unknown names add nothing; [NewRunner] reports them.
func SourcesNeeded(names []string) Need {
	var n Need
	for _, name := range names {
		n |= factories[name].needs
	}
	return n
}

// Sources are the readings collectors share. One scrape runs several
// collectors at once; they all want the same host snapshot, so it is taken
// once and reused while it is younger than MaxAge.
//
// Leave a source nil when no enabled collector needs it, and never store a
// nil pointer in Host, Docker, Libvirt or OVS: an interface holding a nil *Watcher is not
// nil, and a collector would call it.
type Sources struct {
	// Host scans namespaces and links.
	Host HostSource
	// Docker is the cached Docker view, nil when no enabled collector needs it.
	Docker DockerSource
	// Libvirt is the cached libvirt view, nil when no enabled collector needs it.
	Libvirt LibvirtSource
	// OVS is the cached Open vSwitch view, nil when no enabled collector needs it.
	OVS OVSSource
	// NAT is the conntrack view, nil when no enabled collector needs it.
	NAT NATSource
	// Flows is the packet capture, nil unless the flows collector is on.
	Flows *Flows
}

// views returns the daemons' current views for topology; a daemon not
// watched or not reachable has a nil view, so collectors that can do
// without it (the graph) export what the kernel and the other daemons show.
func (s *Sources) views() topology.Views {
	return topology.Views{
		Docker:  currentView[dockerview.View](s.Docker),
		Libvirt: currentView[libvirtview.View](s.Libvirt),
		OVS:     currentView[ovsview.View](s.OVS),
	}
}

// Views returns the daemons' current views as the graph collector reads
// them: a daemon not watched or not reachable has a nil view.
func (s *Sources) Views() topology.Views { return s.views() }

// currentView returns src's view, nil when src is nil (the daemon is not
// watched) or cannot give one (not reachable).
func currentView[V any](src interface{ View() (V, error) }) *V {
	if src == nil {
		return nil
	}
	v, err := src.View()
	if err != nil {
		return nil
	}
	return &v
}

// HostCache shares one hostnet scan between the collectors of a scrape.
type HostCache struct {
	scanner *hostnet.Scanner
	maxAge  time.Duration

	mu    sync.Mutex
	taken time.Time
	snap  *hostnet.Snapshot
}

// NewHostCache returns a cache over scanner. Concurrent callers within
// maxAge of a scan share its result.
func NewHostCache(scanner *hostnet.Scanner, maxAge time.Duration) *HostCache {
	return &HostCache{scanner: scanner, maxAge: maxAge}
}

// Snapshot returns a recent scan, scanning when the last one is too old.
// Callers must not modify the result.
func (h *HostCache) Snapshot(ctx context.Context) (*hostnet.Snapshot, error) {
	snap, _, err := h.SnapshotAt(ctx)
	return snap, err
}

// SnapshotAt is Snapshot with the time the scan was taken, for rates
// computed between two snapshots.
func (h *HostCache) SnapshotAt(ctx context.Context) (*hostnet.Snapshot, time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.snap != nil && time.Since(h.taken) < h.maxAge {
		return h.snap, h.taken, nil
	}
	start := time.Now()
	snap, err := h.scanner.Scan(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	h.snap, h.taken = snap, start
	return snap, start, nil
}
