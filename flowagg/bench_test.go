package flowagg

import (
	"slices"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/flowagg/decoder"
	"github.com/tangfeixiong/nta/internal/frametest"
)

// Benchmarks run decode + aggregation from frames in memory, one goroutine
// (one core), as the capture loop does. Frames are 64-byte TCP/IPv4 frames
// stored back to back; the flow of frame i is i.
//
//	go test -run=^$ -bench=. -benchtime=3s ./flowagg/

func benchAggregate(b *testing.B, flows int) {
	frames := frametest.Arena(b, flows)
	_, tb := testTable(Config{MaxFlowsPerInterface: 2 * flows, MaxFlowsTotal: 2 * flows, IdleTimeout: -1})
	now := time.Now()
	for _, f := range frames { // warm up: every flow is in the table
		tb.Add(f, 64, decoder.DirIn, now)
	}
	if tb.Len() != flows {
		b.Fatalf("%d flows in the table, want %d", tb.Len(), flows)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		tb.Add(frames[i%flows], 64, decoder.DirIn, now)
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
	frames := frametest.Arena(b, 1_000_000)
	_, tb := testTable(Config{MaxFlowsPerInterface: 100_000, MaxFlowsTotal: 100_000, IdleTimeout: -1})
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		tb.Add(frames[i%len(frames)], 64, decoder.DirIn, now)
	}
	el := time.Since(start)
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N), "ns/pkt")
	b.ReportMetric(float64(b.N)/el.Seconds()/1e6, "Mpps")
}

func filledAggregator(b *testing.B, flows int) (*Aggregator, *IfaceTable) {
	a := NewAggregator(Config{MaxFlowsPerInterface: flows, MaxFlowsTotal: flows, IdleTimeout: -1, SnapshotWait: time.Millisecond})
	tb := a.Interface("eth0")
	now := time.Now()
	for _, f := range frametest.Arena(b, flows) {
		tb.Add(f, 64, decoder.DirIn, now)
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
	frames := frametest.Arena(b, flows)
	_, tb := testTable(Config{MaxFlowsPerInterface: 2 * flows, MaxFlowsTotal: 2 * flows, IdleTimeout: -1, SnapshotWait: time.Minute})
	now := time.Now()
	for _, f := range frames {
		tb.Add(f, 64, decoder.DirIn, now)
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
				tb.Add(frames[i%flows], 64, decoder.DirIn, now)
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
