package collector

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// The flow families are most of a scrape (two series per flow), so they skip
// the general-purpose path of prometheus.MustNewConstMetric, which validates
// and sorts the label pairs of every metric and allocates each one apart.
// flowRows builds the label values of every flow once, in label-name order
// and sorted the way the registry sorts series; two writers share them:
// collectFlows wraps them in pre-built metrics for client_golang (its sort
// then finds them in order), and writeFlowText writes them as text
// directly (metrics_text.go), which is several times faster again.

// flowRow is the label set of one exported flow and its two counters.
type flowRow struct {
	vals           [9]string // label values in label-name order
	bytes, packets uint64
}

// flowSeries is the client_golang form of a flowRow: its label pairs, shared
// by its bytes and packets metrics.
type flowSeries struct {
	pairs   [9]dto.LabelPair
	ptrs    [9]*dto.LabelPair
	bytes   counterMetric
	packets counterMetric
}

// counterMetric is a prometheus.Metric whose labels are pre-built.
type counterMetric struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	value  float64
	ctr    dto.Counter
}

var _ prometheus.Metric = (*counterMetric)(nil)

// Desc implements prometheus.Metric.
func (m *counterMetric) Desc() *prometheus.Desc { return m.desc }

// Write implements prometheus.Metric.
func (m *counterMetric) Write(out *dto.Metric) error {
	m.ctr.Value = &m.value
	out.Label = m.labels
	out.Counter = &m.ctr
	return nil
}

// sortedLabelOrder returns, for label names in Desc order, their indexes in
// name order and pointers to the names in that order.
func sortedLabelOrder(keys []string) ([]int, []*string) {
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	names := make([]*string, len(keys))
	for i, o := range order {
		names[i] = &keys[o]
	}
	return order, names
}

// collectFlows sends the flow series of all snapshots.
func (c *flowExporter) collectFlows(ch chan<- prometheus.Metric, fs *flowScrape) {
	rows := c.flowRows(fs)
	// One block for all series: fewer allocations and better locality for
	// the registry walking them.
	block := make([]flowSeries, len(rows))
	nl := len(c.flowSort)
	for i, r := range rows {
		fs := &block[i]
		for j := range nl {
			fs.pairs[j].Name = c.flowName[j]
			fs.pairs[j].Value = &r.vals[j]
			fs.ptrs[j] = &fs.pairs[j]
		}
		labels := fs.ptrs[:nl]
		fs.bytes = counterMetric{desc: c.flowBytes, labels: labels, value: float64(r.bytes)}
		fs.packets = counterMetric{desc: c.flowPackets, labels: labels, value: float64(r.packets)}
	}
	for i := range block {
		ch <- &block[i].bytes
	}
	for i := range block {
		ch <- &block[i].packets
	}
}

// flowRows returns one row per flow series of all snapshots (flows merged by
// label values in workload granularity, then each direction's overflow),
// sorted by label values.
func (c *flowExporter) flowRows(fs *flowScrape) []*flowRow {
	snaps, names := fs.snaps, fs.names
	n := 0
	for _, s := range snaps {
		n += len(s.Flows) + 2
	}
	block := make([]flowRow, 0, n)
	rows := make([]*flowRow, 0, n)
	var ports *[1 << 16]string
	if c.gran.HasPortLabels() {
		ports = portLabels()
	}
	port := func(p uint16, folded bool) string {
		if folded {
			return ""
		}
		return ports[p]
	}
	lv := make([]string, len(c.flowKeys))
	add := func(bytes, packets uint64) {
		if len(block) == cap(block) {
			block = make([]flowRow, 0, 64) // workload merges; never in practice
		}
		block = block[:len(block)+1]
		r := &block[len(block)-1]
		for i, o := range c.flowSort {
			r.vals[i] = lv[o]
		}
		r.bytes, r.packets = bytes, packets
		rows = append(rows, r)
	}
	for _, s := range snaps {
		var merged map[workloadKey]flowagg.Counter
		if c.gran == flowagg.GranularityWorkloadPair {
			merged = make(map[workloadKey]flowagg.Counter)
		}
		for i := range s.Flows {
			f := &s.Flows[i]
			k := &f.Key
			src, dst := k.SrcAddr(), k.DstAddr()
			if merged != nil {
				wk := workloadKey{dir: k.Dir, proto: k.Proto,
					src: names.getOr(c.res, src), dst: names.getOr(c.res, dst)}
				m := merged[wk]
				m.AddCounter(flowagg.Counter{Packets: f.Packets, Bytes: f.Bytes})
				merged[wk] = m
				continue
			}
			lv = append(lv[:0], s.Interface, k.Dir.String(), names.addr(src), names.addr(dst))
			if c.gran.HasPortLabels() {
				lv = append(lv, port(k.SrcPort, k.Flags&decoder.FlagSrcPortFolded != 0),
					port(k.DstPort, k.Flags&decoder.FlagDstPortFolded != 0))
			}
			lv = append(lv, decoder.ProtoName(k.Proto))
			if c.names {
				lv = append(lv, names.get(c.res, src), names.get(c.res, dst))
			}
			add(f.Bytes, f.Packets)
		}
		for wk, m := range merged {
			lv = append(lv[:0], s.Interface, wk.dir.String(), wk.src, wk.dst, decoder.ProtoName(wk.proto))
			add(m.Bytes, m.Packets)
		}
		for d := decoder.DirIn; d <= decoder.DirOut; d++ {
			o := s.Overflow[d]
			if o.Packets == 0 {
				continue
			}
			lv = append(lv[:0], s.Interface, d.String())
			for len(lv) < len(c.flowKeys) {
				lv = append(lv, overflowLabel)
			}
			if c.names {
				lv[len(lv)-2], lv[len(lv)-1] = "", ""
			}
			add(o.Bytes, o.Packets)
		}
	}
	nl := len(c.flowSort)
	slices.SortFunc(rows, func(a, b *flowRow) int {
		for i := 0; i < nl; i++ {
			if c := strings.Compare(a.vals[i], b.vals[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	return rows
}

// portLabels returns the decimal form of every port number, built on first
// use as substrings of one string (about 1.3 MB in all), so that scrapes
// allocate no port labels.
var portLabels = sync.OnceValue(func() *[1 << 16]string {
	var digits []byte
	ends := make([]int, 1<<16)
	for p := range ends {
		digits = strconv.AppendUint(digits, uint64(p), 10)
		ends[p] = len(digits)
	}
	all := string(digits)
	labels := new([1 << 16]string)
	start := 0
	for p, end := range ends {
		labels[p] = all[start:end]
		start = end
	}
	return labels
})

type workloadKey struct {
	dir      decoder.Direction
	proto    uint8
	src, dst string
}

// nameCache remembers, for one scrape, the string form and resolved name of
// each address, so a host in 10k flows is formatted and resolved once.
type nameCache map[netip.Addr]*addrNames

type addrNames struct {
	str, name string
	resolved  bool
}

func (n nameCache) entry(a netip.Addr) *addrNames {
	e, ok := n[a]
	if !ok {
		e = &addrNames{str: a.String()}
		n[a] = e
	}
	return e
}

func (n nameCache) addr(a netip.Addr) string { return n.entry(a).str }

func (n nameCache) get(r Resolver, a netip.Addr) string {
	e := n.entry(a)
	if !e.resolved {
		e.name, e.resolved = r.NameIP(a), true
	}
	return e.name
}

// getOr returns the name of a, or its address when the resolver has none.
func (n nameCache) getOr(r Resolver, a netip.Addr) string {
	if r != nil {
		if name := n.get(r, a); name != "" {
			return name
		}
	}
	return n.addr(a)
}
