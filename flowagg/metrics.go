package flowagg

import (
	"context"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// overflowLabel is the value of every flow-key label (src, dst, ports,
// proto) of the overflow series of an interface.
const overflowLabel = "overflow"

// Collector exports the flow tables of an Aggregator. Each scrape takes one
// fresh snapshot per table (see Aggregator.Snapshots) and builds const
// metrics from it, so flows that expired, were folded or whose interface was
// released leave /metrics at once. The Resolver (optional) is asked once per
// distinct address per scrape.
type Collector struct {
	agg      *Aggregator
	res      Resolver
	gran     Granularity
	names    bool     // src_name/dst_name labels present
	flowKeys []string // label names of the flow families, in Desc order
	flowSort []int    // flowKeys indexes in label-name order
	flowName []*string

	flowBytes, flowPackets         *prometheus.Desc
	inPackets, inBytes             *prometheus.Desc
	tableFlows, tableLimit, budget *prometheus.Desc
	folded, evicted, expired       *prometheus.Desc
	decodeErrors, etherTypes       *prometheus.Desc
	arpBindings, arpConflicts      *prometheus.Desc

	// split: Collect leaves the flow families to a FlowFamilies and hands
	// its snapshots over in pending (see NewSplitCollector).
	split   bool
	pending atomic.Pointer[scrapeSnapshots]
}

// scrapeSnapshots are the snapshots (and names resolved from them) of one
// Collect, waiting for the flow families of the same scrape.
type scrapeSnapshots struct {
	snaps []*TableSnapshot
	names nameCache
}

// Names and help of the flow families, shared by their Descs and WriteText.
const (
	flowBytesName   = "nta_flow_bytes_total"
	flowBytesHelp   = "Bytes (wire length, link header included) of the flow. Flows beyond the budget are summed in the series whose key labels are \"overflow\"."
	flowPacketsName = "nta_flow_packets_total"
	flowPacketsHelp = "Packets of the flow. Flows beyond the budget are summed in the series whose key labels are \"overflow\"."
)

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector over a. res may be nil; with a resolver
// the flow series get src_name and dst_name labels (except in workload
// granularity, where src and dst already are the names) and ARP bindings a
// name label.
func NewCollector(a *Aggregator, res Resolver) *Collector {
	g := a.Config().Granularity
	c := &Collector{agg: a, res: res, gran: g}
	keys := []string{"interface", "direction", "src", "dst"}
	if g.hasPortLabels() {
		keys = append(keys, "src_port", "dst_port")
	}
	keys = append(keys, "proto")
	if res != nil && g != GranularityWorkloadPair {
		c.names = true
		keys = append(keys, "src_name", "dst_name")
	}
	c.flowKeys = keys
	c.flowSort, c.flowName = sortedLabelOrder(keys)
	iface := []string{"interface"}
	c.flowBytes = prometheus.NewDesc(flowBytesName, flowBytesHelp, keys, nil)
	c.flowPackets = prometheus.NewDesc(flowPacketsName, flowPacketsHelp, keys, nil)
	c.inPackets = prometheus.NewDesc("nta_flow_input_packets_total",
		"Frames handed to the flow table of the interface: IP, non-IP and undecodable.", iface, nil)
	c.inBytes = prometheus.NewDesc("nta_flow_input_bytes_total",
		"Wire bytes of the frames handed to the flow table of the interface.", iface, nil)
	c.tableFlows = prometheus.NewDesc("nta_flow_table_flows",
		"Flows in the table of the interface (series besides overflow).", iface, nil)
	c.tableLimit = prometheus.NewDesc("nta_flow_table_limit",
		"Flow limit in force for the interface: min(per-interface budget, total budget / interfaces).", iface, nil)
	c.budget = prometheus.NewDesc("nta_flow_table_budget",
		"Configured flow budget, per interface (scope=\"interface\") and for all interfaces (scope=\"total\").", []string{"scope"}, nil)
	c.folded = prometheus.NewDesc("nta_flow_folded_flows_total",
		"Flows folded into the overflow series because the interface reached its per-interface budget.", iface, nil)
	c.evicted = prometheus.NewDesc("nta_flow_evicted_flows_total",
		"Flows folded into the overflow series because the interface's share of the total budget was the tighter limit.", iface, nil)
	c.expired = prometheus.NewDesc("nta_flow_expired_flows_total",
		"Flows removed from the table and from /metrics after the idle timeout.", iface, nil)
	c.decodeErrors = prometheus.NewDesc("nta_capture_decode_errors_total",
		"Frames that could not be decoded, by reason.", []string{"interface", "reason"}, nil)
	c.etherTypes = prometheus.NewDesc("nta_capture_ethertype_packets_total",
		"Non-IP frames by EtherType (\"0x0806\", \"802.3\" for length-field frames, \"other\" past 64 types).", []string{"interface", "ethertype"}, nil)
	arpLabels := []string{"interface", "ip", "mac"}
	if res != nil {
		arpLabels = append(arpLabels, "name")
	}
	c.arpBindings = prometheus.NewDesc("nta_arp_bindings",
		"IP to MAC bindings claimed in ARP on the interface and not expired (value 1).", arpLabels, nil)
	c.arpConflicts = prometheus.NewDesc("nta_arp_conflicts_total",
		"ARP claims of an IP by a MAC other than the one that claimed it within the conflict window.", []string{"interface", "ip"}, nil)
	return c
}

// NewSplitCollector returns a Collector over a that exports every family
// but nta_flow_bytes_total and nta_flow_packets_total, and the FlowFamilies
// that exports those two. They share one snapshot per scrape: each Collect
// hands its snapshots to the next FlowFamilies call, which takes fresh ones
// only when no Collect left any, so gather the Collector first.
func NewSplitCollector(a *Aggregator, res Resolver) (*Collector, *FlowFamilies) {
	c := NewCollector(a, res)
	c.split = true
	return c, &FlowFamilies{c: c}
}

// Describe sends the descriptors of all families.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	if !c.split {
		ch <- c.flowBytes
		ch <- c.flowPackets
	}
	for _, d := range []*prometheus.Desc{c.inPackets, c.inBytes,
		c.tableFlows, c.tableLimit, c.budget, c.folded, c.evicted, c.expired, c.decodeErrors,
		c.etherTypes, c.arpBindings, c.arpConflicts} {
		ch <- d
	}
}

// Collect takes a snapshot of every table and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.CollectContext(context.Background(), ch)
}

// CollectContext is Collect with a context bounding the wait for snapshots.
func (c *Collector) CollectContext(ctx context.Context, ch chan<- prometheus.Metric) {
	cfg := c.agg.Config()
	ch <- prometheus.MustNewConstMetric(c.budget, prometheus.GaugeValue, float64(cfg.MaxFlowsPerInterface), "interface")
	ch <- prometheus.MustNewConstMetric(c.budget, prometheus.GaugeValue, float64(cfg.MaxFlowsTotal), "total")
	names := make(nameCache)
	snaps := c.agg.Snapshots(ctx)
	for _, s := range snaps {
		c.collectTable(ch, s, names)
	}
	if c.split {
		c.pending.Store(&scrapeSnapshots{snaps: snaps, names: names})
		return
	}
	c.collectFlows(ch, snaps, names)
}

func (c *Collector) collectTable(ch chan<- prometheus.Metric, s *TableSnapshot, names nameCache) {
	ifc := s.Interface
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	counter(c.inPackets, s.Total.Packets, ifc)
	counter(c.inBytes, s.Total.Bytes, ifc)
	ch <- prometheus.MustNewConstMetric(c.tableFlows, prometheus.GaugeValue, float64(len(s.Flows)), ifc)
	ch <- prometheus.MustNewConstMetric(c.tableLimit, prometheus.GaugeValue, float64(s.Limit), ifc)
	counter(c.folded, s.Folded, ifc)
	counter(c.evicted, s.Evicted, ifc)
	counter(c.expired, s.Expiries, ifc)
	for r := ReasonNone + 1; r < numReasons; r++ {
		if s.DecodeErrors[r] > 0 {
			counter(c.decodeErrors, s.DecodeErrors[r], ifc, r.String())
		}
	}
	for _, e := range s.EtherTypes {
		counter(c.etherTypes, e.Packets, ifc, e.Label)
	}
	for _, b := range s.ARPBindings {
		lv := []string{ifc, b.IP.String(), b.MAC.String()}
		if c.res != nil {
			lv = append(lv, names.get(c.res, b.IP))
		}
		ch <- prometheus.MustNewConstMetric(c.arpBindings, prometheus.GaugeValue, 1, lv...)
	}
	for _, a := range s.ARPConflicts {
		counter(c.arpConflicts, a.Conflicts, ifc, a.IP.String())
	}
}
