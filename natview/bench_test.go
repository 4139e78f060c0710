//go:build linux

package natview

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/ti-mo/conntrack"
)

// benchFlows returns n recorded flows like a busy Docker host: a quarter
// ingress to web's published port from many clients, a quarter egress from
// batch to many destinations, half not NAT'd at all.
func benchFlows(n int) []conntrack.Flow {
	flows := make([]conntrack.Flow, n)
	for i := range flows {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		sport := uint16(1024 + i%60000)
		switch i % 4 {
		case 0:
			flows[i] = flow(uint32(i+1), protoTCP, dnat, a.String(), sport, "198.18.0.1", 8080, "172.17.0.2", 80, a.String(), sport)
		case 1:
			flows[i] = egressFlow(uint32(i+1), a.String(), 443)
			flows[i].TupleOrig.Proto.SourcePort = sport
		default:
			flows[i] = flow(uint32(i+1), protoTCP, 0, a.String(), sport, "198.18.0.1", 22, "198.18.0.1", 22, a.String(), sport)
		}
		flows[i].CountersOrig = conntrack.Counter{Bytes: uint64(100 * i), Packets: uint64(i)}
	}
	return flows
}

// A dump of 100k entries applied to the table (attribution, deltas,
// reconciliation), as a re-dump does it every resync.
func BenchmarkDumpApply100k(b *testing.B) {
	flows := benchFlows(100_000)
	tb := newTable(DefaultPeerBudget)
	tb.setEndpoints(labEndpoints())
	first := true
	b.ReportAllocs()
	for b.Loop() {
		tb.beginDump(first)
		first = false
		for i := range flows {
			tb.dumped(&flows[i])
		}
		tb.endDump()
	}
	b.ReportMetric(float64(len(tb.conns)), "nat_conns")
}

// The first dump of 100k entries into an empty table, and the memory the
// table then holds.
func BenchmarkFirstDump100k(b *testing.B) {
	flows := benchFlows(100_000)
	var before, after runtime.MemStats
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		tb := newTable(DefaultPeerBudget)
		tb.setEndpoints(labEndpoints())
		tb.beginDump(true)
		for i := range flows {
			tb.dumped(&flows[i])
		}
		tb.endDump()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB_held")
		runtime.KeepAlive(tb)
	}
}

// A connection's life in events: NEW then DESTROY, attributed and folded
// under the budget with many distinct peers.
func BenchmarkEventNewDestroy(b *testing.B) {
	tb := newTable(DefaultPeerBudget)
	tb.setEndpoints(labEndpoints())
	flows := benchFlows(4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := &flows[i%len(flows)]
		f.ID = uint32(i + 1)
		tb.event(evNew, f)
		tb.event(evDestroy, f)
		i++
	}
	b.ReportMetric(float64(len(tb.tombs)+len(tb.destroyed)), "tombs")
}

func BenchmarkSnapshot(b *testing.B) {
	tb := newTable(DefaultPeerBudget)
	tb.setEndpoints(labEndpoints())
	tb.beginDump(true)
	for i, f := range benchFlows(100_000) {
		f.ID = uint32(i + 1)
		tb.dumped(&f)
	}
	tb.endDump()
	b.ReportAllocs()
	for b.Loop() {
		_ = tb.snapshot()
	}
	b.ReportMetric(float64(len(tb.snapshot().Series)), "series")
}
