package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/afpacket"
	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/topology"
)

func init() {
	registerCollector("flows", false, NeedHost|NeedDocker|NeedLibvirt|NeedOVS|NeedFlows, "AF_PACKET capture: per-interface, per-5-tuple byte and packet counters with a cardinality budget, ARP bindings and conflicts (needs CAP_NET_RAW)", newFlowsCollector)
}

// Flows is the capture side the flows collector exports: the aggregator the
// capture loops feed and the capture's kernel statistics and health.
type Flows struct {
	Aggregator *flowagg.Aggregator
	// Capture may be nil (tests, offline tables).
	Capture CaptureSource
	// Names labels flow endpoints with workload names; refreshed each scrape.
	Names *NameResolver
}

// NameResolver answers the flow exposition's name lookups from the latest topology
// (containers and Docker networks by IP). It is swapped atomically, so the
// lookups done while a scrape exports flows never lock.
type NameResolver struct {
	index atomic.Pointer[topology.NameIndex]
}

// NameIP implements Resolver.
func (r *NameResolver) NameIP(a netip.Addr) string {
	ix := r.index.Load()
	if ix == nil {
		return ""
	}
	return ix.Addr(a)
}

// Refresh rebuilds the index from a snapshot, the daemons' views (any may
// be nil) and the IP → MAC bindings ARP showed (may be nil).
func (r *NameResolver) Refresh(snap *hostnet.Snapshot, views topology.Views, arp map[netip.Addr]string) {
	ix := topology.Names(snap, views)
	if len(arp) > 0 {
		ix = ix.WithARP(arp)
	}
	r.index.Store(ix)
}

type flowsCollector struct {
	src     *Sources
	flows   *flowExporter
	capture *captureExporter
}

func newFlowsCollector(src *Sources, _ *slog.Logger) (Collector, error) {
	if src.Flows == nil || src.Flows.Aggregator == nil {
		return nil, fmt.Errorf("flow capture not configured")
	}
	var res Resolver
	if src.Flows.Names != nil {
		res = src.Flows.Names
	}
	c := &flowsCollector{src: src, flows: newFlowExporter(src.Flows.Aggregator, res)}
	if src.Flows.Capture != nil {
		c.capture = newCaptureExporter(src.Flows.Capture)
	}
	return c, nil
}

// Update takes this scrape's snapshots of the flow tables, refreshes the
// workload names (from the topology and the ARP bindings in the
// snapshots) and exports them with the capture statistics. With a FlowText
// in ctx (the /metrics handler's text path) the two flow families are left
// to it, from the same snapshots. Capture is never stalled by it. When the
// capture has stopped, the frozen counters are still exported but the
// scrape fails, so nta_collector_success{collector="flows"} says so.
func (c *flowsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	fs := c.flows.scrape(ctx)
	if c.src.Flows.Names != nil {
		if snap, err := c.src.Host.Snapshot(ctx); err == nil {
			c.src.Flows.Names.Refresh(snap, c.src.views(), fs.arpBindings())
		}
	}
	c.flows.collectTables(ch, fs)
	if ft := flowTextFrom(ctx); ft != nil {
		ft.set(c.flows, fs)
	} else {
		c.flows.collectFlows(ch, fs)
	}
	if c.capture == nil {
		return nil
	}
	c.capture.collect(ch)
	if err := c.src.Flows.Capture.Err(); err != nil {
		if errors.Is(err, afpacket.ErrInterfacesFailed) {
			return fmt.Errorf("packet capture incomplete, these interfaces have no flow counters: %w", err)
		}
		return fmt.Errorf("packet capture stopped, flow counters are frozen (restart nta-exporter after fixing the cause): %w", err)
	}
	return ctx.Err()
}

// CaptureRoles implements afpacket.RoleSource from the topology (see
// topology.Roles): the host ends of container veths, Docker bridges, VM taps,
// and the name heuristics where no daemon's view says more. It reads the
// shared host cache, so a capture rescan costs at most one host scan per
// cache period.
type CaptureRoles struct {
	Src *Sources
}

// InterfaceRoles returns interface name → roles in the host namespace.
func (r CaptureRoles) InterfaceRoles(ctx context.Context) (map[string][]string, error) {
	snap, err := r.Src.Host.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return topology.Roles(snap, r.Src.views()), nil
}
