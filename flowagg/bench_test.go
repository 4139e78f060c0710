package flowagg

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Benchmarks run decode + aggregation from frames in memory, one goroutine
// (one core), as the capture loop does. Frames are 64-byte TCP/IPv4 frames
// stored back to back; the flow of frame i is i.
//
//	go test -run=^$ -bench=. -benchtime=3s ./flowagg/

// frameArena returns n distinct TCP/IPv4 frames (distinct 5-tuples).
func frameArena(tb testing.TB, n int) [][]byte {
	g := newFrameGen(tb, 0)
	size := len(g.tmpl)
	arena := make([]byte, n*size)
	frames := make([][]byte, n)
	for i := range n {
		buf := arena[i*size : i*size : (i+1)*size]
		frames[i] = g.frame(buf, 0x0a000000|uint32(i>>8), 0xc0a80000|uint32(i&0xff), 40000+uint16(i%20000), 443)
	}
	return frames
}

func benchAggregate(b *testing.B, flows int) {
	frames := frameArena(b, flows)
	_, tb := testTable(Config{MaxFlowsPerInterface: 2 * flows, MaxFlowsTotal: 2 * flows, IdleTimeout: -1})
	now := time.Now()
	for _, f := range frames { // warm up: every flow is in the table
		tb.Add(f, 64, DirIn, now)
	}
	if tb.Len() != flows {
		b.Fatalf("%d flows in the table, want %d", tb.Len(), flows)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		tb.Add(frames[i%flows], 64, DirIn, now)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N), "ns/pkt")
	b.ReportMetric(float64(b.N)/el.Seconds()/1e6, "Mpps")
}

func BenchmarkAggregate10kFlows(b *testing.B) { benchAggregate(b, 10_000) }
func BenchmarkAggregate1MFlows(b *testing.B)  { benchAggregate(b, 1_000_000) }

// BenchmarkAggregateFlood is the worst case: every packet is a new flow and
// the table (budget 100k) folds its smallest quarter every 25k packets.
func BenchmarkAggregateFlood(b *testing.B) {
	frames := frameArena(b, 1_000_000)
	_, tb := testTable(Config{MaxFlowsPerInterface: 100_000, MaxFlowsTotal: 100_000, IdleTimeout: -1})
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		tb.Add(frames[i%len(frames)], 64, DirIn, now)
	}
	el := time.Since(start)
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N), "ns/pkt")
	b.ReportMetric(float64(b.N)/el.Seconds()/1e6, "Mpps")
}

// BenchmarkDecode is the decoder alone over a mix of protocols.
func BenchmarkDecode(b *testing.B) {
	var frames [][]byte
	var links []linkType
	for _, c := range decodeCases(b) {
		if c.kind == kindFlow {
			frames = append(frames, c.frame)
			links = append(links, c.link)
		}
	}
	var d decoder
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var r result
		j := i % len(frames)
		d.decode(links[j], frames[j], 1, &r)
	}
	el := time.Since(start)
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N), "ns/pkt")
	b.ReportMetric(float64(b.N)/el.Seconds()/1e6, "Mpps")
}

func filledAggregator(b *testing.B, flows int) (*Aggregator, *IfaceTable) {
	a := NewAggregator(Config{MaxFlowsPerInterface: flows, MaxFlowsTotal: flows, IdleTimeout: -1, SnapshotWait: time.Millisecond})
	tb := a.Interface("eth0")
	now := time.Now()
	for _, f := range frameArena(b, flows) {
		tb.Add(f, 64, DirIn, now)
	}
	return a, tb
}

// BenchmarkSnapshot is one scrape's snapshot as the live path makes it:
// the scraper asks (and allocates the buffer), the capture loop keeps adding
// packets (100 between Publish calls, as between ring blocks) and copies the
// flows in slices in its Publish calls. ns/op is the whole hand-over;
// publish-us/snapshot is the capture goroutine's time in Publish, and
// p50/p99-publish-us the length of its single pauses (on a shared 2-core
// machine the maximum is the scheduler's, not ours).
func BenchmarkSnapshot10k(b *testing.B)  { benchSnapshot(b, 10_000) }
func BenchmarkSnapshot100k(b *testing.B) { benchSnapshot(b, 100_000) }
func BenchmarkSnapshot1M(b *testing.B)   { benchSnapshot(b, 1_000_000) }

func benchSnapshot(b *testing.B, flows int) {
	frames := frameArena(b, flows)
	_, tb := testTable(Config{MaxFlowsPerInterface: 2 * flows, MaxFlowsTotal: 2 * flows, IdleTimeout: -1, SnapshotWait: time.Minute})
	now := time.Now()
	for _, f := range frames {
		tb.Add(f, 64, DirIn, now)
	}
	tb.Publish()
	var inPublish time.Duration
	var pauses []time.Duration
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		done := tb.requestSnapshot()
		for waiting := true; waiting; {
			for range 100 {
				tb.Add(frames[i%flows], 64, DirIn, now)
				i++
			}
			start := time.Now()
			tb.Publish()
			d := time.Since(start)
			inPublish += d
			pauses = append(pauses, d)
			select {
			case <-done:
				waiting = false
			default:
			}
		}
	}
	b.ReportMetric(float64(inPublish.Microseconds())/float64(b.N), "publish-us/snapshot")
	slices.Sort(pauses)
	b.ReportMetric(float64(pauses[len(pauses)/2].Microseconds()), "p50-publish-us")
	b.ReportMetric(float64(pauses[len(pauses)*99/100].Microseconds()), "p99-publish-us")
}

// BenchmarkScrape is one scrape: snapshot, Collector, registry Gather and
// text exposition. Each flow is two series (bytes and packets).
// BenchmarkScrapeText is the same scrape as /metrics serves the text format:
// the split Collector through the registry, then FlowFamilies.WriteText.
func BenchmarkScrape10kSeries(b *testing.B)      { benchScrape(b, 5_000, false) }
func BenchmarkScrape100kSeries(b *testing.B)     { benchScrape(b, 50_000, false) }
func BenchmarkScrape100kFlows(b *testing.B)      { benchScrape(b, 100_000, false) }
func BenchmarkScrapeText10kSeries(b *testing.B)  { benchScrape(b, 5_000, true) }
func BenchmarkScrapeText100kSeries(b *testing.B) { benchScrape(b, 50_000, true) }
func BenchmarkScrapeText100kFlows(b *testing.B)  { benchScrape(b, 100_000, true) }

func benchScrape(b *testing.B, flows int, text bool) {
	a, tb := filledAggregator(b, flows)
	reg := prometheus.NewRegistry()
	var fam *FlowFamilies
	if text {
		var c *Collector
		c, fam = NewSplitCollector(a, nil)
		reg.MustRegister(c)
	} else {
		reg.MustRegister(NewCollector(a, nil))
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tb.PublishSnapshot() // stands in for the capture loop's Publish
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				b.Fatal(err)
			}
		}
		if fam != nil {
			if err := fam.WriteText(context.Background(), &buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes/scrape")
	b.ReportMetric(float64(2*flows), "flow-series")
}
