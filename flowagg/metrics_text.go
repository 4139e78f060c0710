package flowagg

import (
	"bufio"
	"context"
	"io"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// FlowFamilies exports nta_flow_bytes_total and nta_flow_packets_total for a
// Collector made by NewSplitCollector. WriteText is the fast path of
// /metrics: it writes the text exposition format straight from the snapshot,
// without the client library's per-series protobuf messages, consistency
// checks and generic encoder, which cost most of a scrape of 100k flow
// series. As a prometheus.Collector it exports the same families through
// client_golang, for the other formats (protobuf).
type FlowFamilies struct {
	c *Collector
}

var _ prometheus.Collector = (*FlowFamilies)(nil)

// Describe sends the descriptors of the two flow families.
func (f *FlowFamilies) Describe(ch chan<- *prometheus.Desc) {
	ch <- f.c.flowBytes
	ch <- f.c.flowPackets
}

// Collect sends the flow series.
func (f *FlowFamilies) Collect(ch chan<- prometheus.Metric) {
	snaps, names := f.snapshots(context.Background())
	f.c.collectFlows(ch, snaps, names)
}

// snapshots takes over the snapshots the Collector's latest Collect left,
// or takes fresh ones if another call already used them.
func (f *FlowFamilies) snapshots(ctx context.Context) ([]*TableSnapshot, nameCache) {
	if p := f.c.pending.Swap(nil); p != nil {
		return p.snaps, p.names
	}
	return f.c.agg.Snapshots(ctx), make(nameCache)
}

// WriteText writes the two flow families to w in the Prometheus text
// format 0.0.4, the same lines in the same order as expfmt writes for them
// after a registry Gather: HELP and TYPE, then the series sorted by label
// values. Nothing is written when there are no flows. ctx bounds the wait for
// fresh snapshots, if it has to take them.
func (f *FlowFamilies) WriteText(ctx context.Context, w io.Writer) error {
	snaps, names := f.snapshots(ctx)
	rows := f.c.flowRows(snaps, names)
	if len(rows) == 0 {
		return nil
	}
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = bufio.NewWriterSize(w, 64<<10)
	}
	// Each label name with its punctuation, '{' or ',' before it: the
	// constant part of every series line.
	keys := make([]string, len(f.c.flowName))
	for i, n := range f.c.flowName {
		keys[i] = "," + *n + `="`
	}
	keys[0] = "{" + keys[0][1:]
	line := make([]byte, 0, 512)
	for _, fam := range []struct {
		name, help string
		bytes      bool
	}{{flowBytesName, flowBytesHelp, true}, {flowPacketsName, flowPacketsHelp, false}} {
		line = append(line[:0], "# HELP "...)
		line = append(line, fam.name...)
		line = append(line, ' ')
		line = appendEscaped(line, fam.help, false)
		line = append(line, "\n# TYPE "...)
		line = append(line, fam.name...)
		line = append(line, " counter\n"...)
		if _, err := bw.Write(line); err != nil {
			return err
		}
		for _, r := range rows {
			line = append(line[:0], fam.name...)
			for i, k := range keys {
				line = append(line, k...)
				line = appendEscaped(line, r.vals[i], true)
				line = append(line, '"')
			}
			line = append(line, "} "...)
			v := r.packets
			if fam.bytes {
				v = r.bytes
			}
			line = appendCounter(line, v)
			line = append(line, '\n')
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// appendEscaped appends s escaped as the text format requires: backslash and
// newline in HELP, and the double quote as well in label values.
func appendEscaped(b []byte, s string, quote bool) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch c := s[i]; {
		case c == '\\':
			esc = `\\`
		case c == '\n':
			esc = `\n`
		case c == '"' && quote:
			esc = `\"`
		default:
			continue
		}
		b = append(append(b, s[start:i]...), esc...)
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendCounter appends v as expfmt formats the float64 value of a counter:
// strconv's shortest 'g' form, which is the plain integer below 1e6 and
// exponent form (1.234567e+06) from there.
func appendCounter(b []byte, v uint64) []byte {
	if v < 1e6 {
		return strconv.AppendUint(b, v, 10)
	}
	return strconv.AppendFloat(b, float64(v), 'g', -1, 64)
}
