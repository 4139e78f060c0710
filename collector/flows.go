package collector

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/topology"
)

func init() {
	registerCollector("flows", false, NeedHost|NeedDocker|NeedFlows, "AF_PACKET capture: per-interface, per-5-tuple byte and packet counters with a cardinality budget, ARP bindings and conflicts (needs CAP_NET_RAW)", newFlowsCollector)
}

// Flows is the capture side the flows collector exports: the aggregator the
// capture loops feed and the capturer's kernel statistics.
type Flows struct {
	Aggregator *flowagg.Aggregator
	Capture    flowagg.CaptureStatsSource
	// Names labels flow endpoints with workload names; refreshed each scrape.
	Names *NameResolver

	split *flowagg.Collector // set by SplitFlowFamilies
}

// SplitFlowFamilies makes the flows collector leave nta_flow_bytes_total and
// nta_flow_packets_total out, and returns their exporter: the /metrics
// handler writes them itself in the text format (see flowagg.FlowFamilies),
// after gathering the registry, whose flows collector hands its snapshots
// over. Call it before NewRunner.
func (f *Flows) SplitFlowFamilies() *flowagg.FlowFamilies {
	c, fam := flowagg.NewSplitCollector(f.Aggregator, f.Names)
	f.split = c
	return fam
}

// NameResolver answers flowagg's name lookups from the latest topology
// (containers and Docker networks by IP). It is swapped atomically, so the
// lookups done while a scrape exports flows never lock.
type NameResolver struct {
	index atomic.Pointer[topology.NameIndex]
}

// NameIP implements flowagg.Resolver.
func (r *NameResolver) NameIP(a netip.Addr) string {
	ix := r.index.Load()
	if ix == nil {
		return ""
	}
	return ix.Addr(a)
}

// Refresh rebuilds the index from a snapshot and a Docker view (may be nil).
func (r *NameResolver) Refresh(snap *hostnet.Snapshot, view *dockerview.View) {
	r.index.Store(topology.Names(snap, view))
}

type flowsCollector struct {
	src     *Sources
	flows   *flowagg.Collector
	capture *flowagg.CaptureCollector
}

func newFlowsCollector(src *Sources, _ *slog.Logger) (Collector, error) {
	if src.Flows == nil || src.Flows.Aggregator == nil {
		return nil, fmt.Errorf("flow capture not configured")
	}
	c := &flowsCollector{src: src, flows: src.Flows.split}
	if c.flows == nil {
		c.flows = flowagg.NewCollector(src.Flows.Aggregator, src.Flows.Names)
	}
	if src.Flows.Capture != nil {
		c.capture = flowagg.NewCaptureCollector(src.Flows.Capture)
	}
	return c, nil
}

// Update refreshes the workload names, then exports the flow tables'
// snapshots and the capture statistics (without the flow series after
// SplitFlowFamilies). Capture is never stalled by it.
func (c *flowsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	if c.src.Flows.Names != nil {
		if snap, err := c.src.Host.Snapshot(ctx); err == nil {
			var view *dockerview.View
			if c.src.Docker != nil {
				if v, err := c.src.Docker.View(); err == nil {
					view = &v
				}
			}
			c.src.Flows.Names.Refresh(snap, view)
		}
	}
	c.flows.Collect(ch)
	if c.capture != nil {
		c.capture.Collect(ch)
	}
	return nil
}

// Roles implements flowagg.RoleSource from the topology: the host ends of
// container veths, Docker bridges, taps. It reads the shared host cache, so
// a capture rescan costs at most one host scan per cache period.
type Roles struct {
	Src *Sources
}

// Roles returns interface name → roles in the host namespace.
func (r Roles) Roles() map[string][]string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap, err := r.Src.Host.Snapshot(ctx)
	if err != nil {
		return nil
	}
	var view *dockerview.View
	if r.Src.Docker != nil {
		if v, err := r.Src.Docker.View(); err == nil {
			view = &v
		}
	}
	return topology.Roles(snap, view)
}
