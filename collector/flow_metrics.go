package collector

import (
	"context"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// overflowLabel is the value of every flow-key label (src, dst, ports,
// proto) of the overflow series of an interface.
const overflowLabel = "overflow"

// Resolver names the addresses that belong to a container, VM or network
// (NameResolver, from the topology). It is called at export time, once per
// distinct address per scrape, never per packet. "" means unknown.
type Resolver interface {
	NameIP(netip.Addr) string
}

// flowExporter turns the flow tables of an Aggregator into metrics. Each
// scrape takes one fresh snapshot per table (see Aggregator.Snapshots) into
// a flowScrape, and every family of that scrape is built from it, so table
// gauges and flow series describe the same instant, and flows that expired,
// were folded or whose interface was released leave /metrics at once. The
// Resolver (optional) is asked once per distinct address per scrape.
type flowExporter struct {
	agg      *flowagg.Aggregator
	res      Resolver
	gran     flowagg.Granularity
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
}

// flowScrape is one scrape's view of the flow tables: the snapshots and the
// names resolved from them, shared by every flow family of that scrape.
type flowScrape struct {
	snaps []*flowagg.TableSnapshot
	names nameCache
}

// Names and help of the flow families, shared by their Descs and writeText.
const (
	flowBytesName   = Namespace + "_flow_bytes_total"
	flowBytesHelp   = "Bytes (wire length, link header included) of the flow. Flows beyond the budget are summed in the series whose key labels are \"overflow\"."
	flowPacketsName = Namespace + "_flow_packets_total"
	flowPacketsHelp = "Packets of the flow. Flows beyond the budget are summed in the series whose key labels are \"overflow\"."
)

// newFlowExporter returns an exporter over a. res may be nil; with a
// resolver the flow series get src_name and dst_name labels (except in
// workload granularity, where src and dst already are the names) and ARP
// bindings a name label.
func newFlowExporter(a *flowagg.Aggregator, res Resolver) *flowExporter {
	g := a.Config().Granularity
	c := &flowExporter{agg: a, res: res, gran: g}
	keys := []string{"interface", "direction", "src", "dst"}
	if g.HasPortLabels() {
		keys = append(keys, "src_port", "dst_port")
	}
	keys = append(keys, "proto")
	if res != nil && g != flowagg.GranularityWorkloadPair {
		c.names = true
		keys = append(keys, "src_name", "dst_name")
	}
	c.flowKeys = keys
	c.flowSort, c.flowName = sortedLabelOrder(keys)
	iface := []string{"interface"}
	c.flowBytes = prometheus.NewDesc(flowBytesName, flowBytesHelp, keys, nil)
	c.flowPackets = prometheus.NewDesc(flowPacketsName, flowPacketsHelp, keys, nil)
	c.inPackets = prometheus.NewDesc(Namespace+"_flow_input_packets_total",
		"Frames handed to the flow table of the interface: IP, non-IP and undecodable.", iface, nil)
	c.inBytes = prometheus.NewDesc(Namespace+"_flow_input_bytes_total",
		"Wire bytes of the frames handed to the flow table of the interface.", iface, nil)
	c.tableFlows = prometheus.NewDesc(Namespace+"_flow_table_flows",
		"Flows in the table of the interface (series besides overflow).", iface, nil)
	c.tableLimit = prometheus.NewDesc(Namespace+"_flow_table_limit",
		"Flow limit in force for the interface: min(per-interface budget, total budget / interfaces).", iface, nil)
	c.budget = prometheus.NewDesc(Namespace+"_flow_table_budget",
		"Configured flow budget, per interface (scope=\"interface\") and for all interfaces (scope=\"total\").", []string{"scope"}, nil)
	c.folded = prometheus.NewDesc(Namespace+"_flow_folded_flows_total",
		"Flows folded into the overflow series because the interface reached its per-interface budget.", iface, nil)
	c.evicted = prometheus.NewDesc(Namespace+"_flow_evicted_flows_total",
		"Flows folded into the overflow series because the interface's share of the total budget was the tighter limit.", iface, nil)
	c.expired = prometheus.NewDesc(Namespace+"_flow_expired_flows_total",
		"Flows removed from the table and from /metrics after the idle timeout.", iface, nil)
	c.decodeErrors = prometheus.NewDesc(Namespace+"_capture_decode_errors_total",
		"Frames that could not be decoded, by reason.", []string{"interface", "reason"}, nil)
	c.etherTypes = prometheus.NewDesc(Namespace+"_capture_ethertype_packets_total",
		"Non-IP frames by EtherType (\"0x0806\", \"802.3\" for length-field frames, \"other\" past 64 types).", []string{"interface", "ethertype"}, nil)
	arpLabels := []string{"interface", "ip", "mac"}
	if res != nil {
		arpLabels = append(arpLabels, "name")
	}
	c.arpBindings = prometheus.NewDesc(Namespace+"_arp_bindings",
		"IP to MAC bindings claimed in ARP on the interface and not expired (value 1).", arpLabels, nil)
	c.arpConflicts = prometheus.NewDesc(Namespace+"_arp_conflicts_total",
		"ARP claims of an IP by a MAC other than the one that claimed it within the conflict window.", []string{"interface", "ip"}, nil)
	return c
}

// arpBindings returns IP → MAC of every ARP binding in the scrape's tables.
func (fs *flowScrape) arpBindings() map[netip.Addr]string {
	var out map[netip.Addr]string
	for _, s := range fs.snaps {
		for _, b := range s.ARPBindings {
			if out == nil {
				out = map[netip.Addr]string{}
			}
			out[b.IP] = b.MAC.String()
		}
	}
	return out
}

// scrape takes the snapshots of one scrape; ctx bounds the wait for them.
func (c *flowExporter) scrape(ctx context.Context) *flowScrape {
	return &flowScrape{snaps: c.agg.Snapshots(ctx), names: make(nameCache)}
}

// collectTables sends the budget and every table's families but the two
// flow families.
func (c *flowExporter) collectTables(ch chan<- prometheus.Metric, fs *flowScrape) {
	cfg := c.agg.Config()
	ch <- prometheus.MustNewConstMetric(c.budget, prometheus.GaugeValue, float64(cfg.MaxFlowsPerInterface), "interface")
	ch <- prometheus.MustNewConstMetric(c.budget, prometheus.GaugeValue, float64(cfg.MaxFlowsTotal), "total")
	for _, s := range fs.snaps {
		c.collectTable(ch, s, fs.names)
	}
}

func (c *flowExporter) collectTable(ch chan<- prometheus.Metric, s *flowagg.TableSnapshot, names nameCache) {
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
	for r := decoder.ReasonNone + 1; r < decoder.NumReasons; r++ {
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
