package collector

import (
	"bufio"
	"context"
	"io"
	"maps"
	"slices"
	"strconv"
	"sync"
)

// FlowText hands one scrape's flow families from the flows collector to the
// /metrics handler, which writes them itself in the text exposition format:
// the two flow families are most of a scrape (two series per flow, 100k and
// more), and client_golang spends most of its time on them (a protobuf
// message per series, consistency checks, sorting, encoding).
//
// A FlowText belongs to one request: the handler makes it with WithFlowText
// and gathers the registry under the returned context; the flows collector
// finds it there, exports every flow family but the flow series, and leaves
// its snapshots in it; the handler then calls WriteText. Concurrent scrapes
// each have their own, so the table gauges and the flow series of a scrape
// always come from the same snapshots. Without a FlowText in the context
// (other formats, tests) the flows collector exports the flow series through
// client_golang like any other family.
//
// Other collectors with many uniform series (the OVS interface counters)
// leave text writers in it the same way (setText); WriteText writes them
// after the flow families, in the order of their collectors' names.
type FlowText struct {
	mu    sync.Mutex
	e     *flowExporter
	fs    *flowScrape
	extra map[string]func(io.Writer) error // by collector name
}

// setText leaves the text families of collector name for WriteText.
func (ft *FlowText) setText(name string, write func(io.Writer) error) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.extra == nil {
		ft.extra = map[string]func(io.Writer) error{}
	}
	ft.extra[name] = write
}

type flowTextKey struct{}

// WithFlowText returns a context carrying a new FlowText for one scrape.
func WithFlowText(ctx context.Context) (context.Context, *FlowText) {
	ft := &FlowText{}
	return context.WithValue(ctx, flowTextKey{}, ft), ft
}

func flowTextFrom(ctx context.Context) *FlowText {
	ft, _ := ctx.Value(flowTextKey{}).(*FlowText)
	return ft
}

func (ft *FlowText) set(e *flowExporter, fs *flowScrape) {
	ft.mu.Lock()
	ft.e, ft.fs = e, fs
	ft.mu.Unlock()
}

// WriteText writes nta_flow_bytes_total and nta_flow_packets_total of the
// scrape to w in the Prometheus text format 0.0.4, the same lines in the
// same order as expfmt writes for them after a registry Gather: HELP and
// TYPE, then the series sorted by label values. Nothing is written when the
// flows collector did not run in this scrape or there are no flows.
func (ft *FlowText) WriteText(w io.Writer) error {
	ft.mu.Lock()
	e, fs, extra := ft.e, ft.fs, maps.Clone(ft.extra)
	ft.mu.Unlock()
	if e != nil {
		if err := e.writeFlowText(w, fs); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		if err := extra[name](w); err != nil {
			return err
		}
	}
	return nil
}

// writeFlowText writes the two flow families of fs straight from the
// snapshots, without the client library's per-series protobuf messages,
// consistency checks and generic encoder, which cost most of a scrape of
// 100k flow series.
func (c *flowExporter) writeFlowText(w io.Writer, fs *flowScrape) error {
	rows := c.flowRows(fs)
	if len(rows) == 0 {
		return nil
	}
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = bufio.NewWriterSize(w, 64<<10)
	}
	// Each label name with its punctuation, '{' or ',' before it: the
	// constant part of every series line.
	keys := make([]string, len(c.flowName))
	for i, n := range c.flowName {
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
