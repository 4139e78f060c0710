package topoweb

import (
	"strings"
	"sync"
	"time"

	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/topology"
)

// counters are cumulative byte and packet counts of one node, from that
// node's own point of view (a VM's: the guest's, its taps' swapped).
type counters struct {
	RxBytes, TxBytes, RxPackets, TxPackets uint64
}

func (c *counters) add(o counters) {
	c.RxBytes += o.RxBytes
	c.TxBytes += o.TxBytes
	c.RxPackets += o.RxPackets
	c.TxPackets += o.TxPackets
}

func fromStats(s hostnet.Stats) counters {
	return counters{RxBytes: s.RxBytes, TxBytes: s.TxBytes, RxPackets: s.RxPackets, TxPackets: s.TxPackets}
}

// Traffic is the rate over a node or an edge between two readings.
type Traffic struct {
	// BytesPerSecond is received plus transmitted; Rx and Tx are from the
	// point of view of Via (an edge) or of the node itself.
	BytesPerSecond   float64 `json:"bytes_per_second"`
	RxBytesPerSecond float64 `json:"rx_bytes_per_second"`
	TxBytesPerSecond float64 `json:"tx_bytes_per_second"`
	PacketsPerSecond float64 `json:"packets_per_second"`
	// Via is the node whose counters measure an edge.
	Via string `json:"via,omitempty"`
}

// reading is the counters of every node of one graph, taken at one time.
type reading struct {
	at       time.Time
	snap     *hostnet.Snapshot
	counters map[string]counters
}

// nodeCounters returns the counters of every node that has some: kernel
// links, OVS interfaces without a kernel device (their statistics column),
// and sums for OVS ports (their interfaces), namespaces and containers
// (the namespace's interfaces) and VMs (their NICs, from the guest's side).
func nodeCounters(g *topology.Graph, snap *hostnet.Snapshot, views topology.Views) map[string]counters {
	out := make(map[string]counters, len(snap.Links))
	for _, l := range snap.Links {
		if l.Kind != "loopback" {
			out[topology.InterfaceID(l.Netns, l.Name)] = fromStats(l.Stats)
		}
	}
	if views.OVS != nil {
		for _, b := range views.OVS.Bridges {
			for _, p := range b.Ports {
				for _, i := range p.Interfaces {
					if id := topology.OVSInterfaceID(i.Name); i.HasStats {
						out[id] = counters{RxBytes: i.Stats.RxBytes, TxBytes: i.Stats.TxBytes, RxPackets: i.Stats.RxPackets, TxPackets: i.Stats.TxPackets}
					}
				}
			}
		}
	}
	byNetns := map[string]counters{}
	for _, n := range g.Nodes {
		if c, ok := out[n.ID]; ok && n.Netns != "" && n.Kind != topology.KindNetns {
			s := byNetns[n.Netns]
			s.add(c)
			byNetns[n.Netns] = s
		}
	}
	for _, n := range g.Nodes {
		if n.Kind == topology.KindNetns {
			if c, ok := byNetns[n.Netns]; ok {
				out[n.ID] = c
			}
		}
	}
	sums := map[string]counters{}
	has := map[string]bool{}
	for _, e := range g.Edges {
		c, ok := out[e.Target]
		if !ok {
			continue
		}
		switch e.Kind {
		case topology.EdgeOVSInterface: // port → interface
		case topology.EdgeSandbox: // container → its namespace
		case topology.EdgeVMNIC: // VM → tap: the guest receives what the tap sends
			c = counters{RxBytes: c.TxBytes, TxBytes: c.RxBytes, RxPackets: c.TxPackets, TxPackets: c.RxPackets}
		default:
			continue
		}
		s := sums[e.Source]
		s.add(c)
		sums[e.Source], has[e.Source] = s, true
	}
	for id, c := range sums {
		if _, own := out[id]; !own && has[id] {
			out[id] = c
		}
	}
	return out
}

// wireEdge reports whether an edge is a wire that carries frames, whose
// traffic is measured by one of its ends; the other kinds are relations
// (a namespace, a Docker or libvirt network) with no counters of their own.
// A published port's edges (publish, dnat) carry NAT'd traffic that only
// conntrack counts (the nat collector, not the host scan): no rate here
// rather than the host namespace's or the container's whole traffic.
func wireEdge(kind string) bool {
	switch kind {
	case topology.EdgeNetns, topology.EdgeSandbox, topology.EdgeEndpoint, topology.EdgeVMNetwork, topology.EdgeBacks,
		topology.EdgePublish, topology.EdgeDNAT:
		return false
	}
	return true
}

// edgeVia returns, for every wire edge, the node whose counters measure it:
// an end that is a device (a kernel link, an OVS interface), the source
// first; else an OVS port. A veth_link (bridge to bridge) is measured by
// the veth pair joining them. Kinds added later (published ports) get an
// end that has counters, if any.
func edgeVia(g *topology.Graph, have map[string]counters) map[string]string {
	kind := make(map[string]string, len(g.Nodes))
	for _, n := range g.Nodes {
		kind[n.ID] = n.Kind
	}
	device := func(id string) bool {
		_, ok := have[id]
		return ok && kind[id] != "bridge" && (strings.HasPrefix(id, "if:") || strings.HasPrefix(id, "ovsif:"))
	}
	master := map[string]string{}
	for _, e := range g.Edges {
		if e.Kind == topology.EdgeMember {
			master[e.Source] = e.Target
		}
	}
	pairs := map[[2]string]string{} // bridges joined → a veth end
	out := map[string]string{}
	for _, e := range g.Edges {
		if e.Kind == topology.EdgeVeth {
			a, b := master[e.Source], master[e.Target]
			pairs[[2]string{a, b}], pairs[[2]string{b, a}] = e.Source, e.Source
		}
	}
	for _, e := range g.Edges {
		if !wireEdge(e.Kind) {
			continue
		}
		var via string
		switch {
		case e.Kind == topology.EdgeVethLink:
			via = pairs[[2]string{e.Source, e.Target}]
		case device(e.Source):
			via = e.Source
		case device(e.Target):
			via = e.Target
		default:
			for _, id := range []string{e.Source, e.Target} {
				if _, ok := have[id]; ok && kind[id] != "bridge" {
					via = id
					break
				}
			}
		}
		if _, ok := have[via]; ok {
			out[e.ID] = via
		}
	}
	return out
}

// rate is the traffic between two readings of a counter; nil when the
// counter went backwards (the device was recreated under the same name).
func rate(from, to counters, seconds float64) *Traffic {
	if to.RxBytes < from.RxBytes || to.TxBytes < from.TxBytes || to.RxPackets < from.RxPackets || to.TxPackets < from.TxPackets || seconds <= 0 {
		return nil
	}
	rx := float64(to.RxBytes-from.RxBytes) / seconds
	tx := float64(to.TxBytes-from.TxBytes) / seconds
	pk := float64(to.RxPackets-from.RxPackets+to.TxPackets-from.TxPackets) / seconds
	return &Traffic{BytesPerSecond: rx + tx, RxBytesPerSecond: rx, TxBytesPerSecond: tx, PacketsPerSecond: pk}
}

// history keeps the recent readings so that every request gets rates over
// about Window, whoever asked before: rates are the server's, shared by all
// pages and independent of how often each polls.
type history struct {
	window time.Duration

	mu       sync.Mutex
	readings []*reading // oldest first: the newest a window old, and younger ones
}

// add records r when its snapshot is new (else the reading of that
// snapshot stands for it) and returns the current reading and the one to
// compare it with: the newest at least window older, else the oldest kept;
// base is nil when there is none yet.
func (h *history) add(r *reading) (cur, base *reading) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.readings); n > 0 && h.readings[n-1].snap == r.snap {
		r = h.readings[n-1] // the same scan as last time: nothing new
	} else if n == 0 || r.at.After(h.readings[n-1].at) {
		h.readings = append(h.readings, r)
	}
	// Drop readings a younger one can stand in for: keep the newest that is
	// a window old and everything after it.
	keep := 0
	for keep < len(h.readings)-1 && r.at.Sub(h.readings[keep+1].at) >= h.window {
		keep++
	}
	h.readings = h.readings[keep:]
	for _, o := range h.readings {
		if o == r {
			break
		}
		if base == nil || r.at.Sub(o.at) >= h.window {
			base = o
		}
	}
	return r, base
}
