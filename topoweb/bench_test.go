package topoweb

import (
	"context"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/topology"
)

// cpuTime is the CPU time (user + system, all threads: GC included) the
// process used so far: on a shared machine it says what the work costs
// when wall time also holds other processes' share of the cores.
func cpuTime() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// reportCPU adds cpu-ms/op for the loop that started at cpu0.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// The host: 50 containers, 10 VMs, 200 OVS ports (plus the
// bridges, the veth between two of them, the patch pair and a tunnel).
const benchContainers, benchVMs, benchOVSPorts = 50, 10, 200

// BenchmarkTopologyData is one /topology.json request on that host, from
// the host reading to the encoded JSON: graph build, counters, DOT and its
// digest, rates against the previous reading. Each iteration is a new scan
// 5 s after the last, so rates are computed every time.
//
//	go test -run '^$' -bench Topology -benchmem ./topoweb/
func BenchmarkTopologyData(b *testing.B) {
	snap, views := synthHost(benchContainers, benchVMs, benchOVSPorts, 1)
	t0 := time.Now()
	i := 0
	src := Source{
		Snapshot: func(context.Context) (*hostnet.Snapshot, time.Time, error) {
			i++
			s := *snap // a new scan each time: the history records it
			return &s, t0.Add(time.Duration(i) * 5 * time.Second), nil
		},
		Views: func() topology.Views { return views },
	}
	h := NewHandler(src, nil, Options{})
	req := httptest.NewRequest("GET", DataPath, nil)
	h.serveData(httptest.NewRecorder(), req) // a first reading to compare with
	var bytes int
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.serveData(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		bytes = w.Body.Len()
	}
	reportCPU(b, cpu0)
	g := topology.Build(snap, views)
	b.ReportMetric(float64(len(g.Nodes)), "nodes")
	b.ReportMetric(float64(len(g.Edges)), "edges")
	b.ReportMetric(float64(bytes), "json-bytes")
}

// BenchmarkTopologySVG is the layout of that host by the embedded Graphviz
// (what a changed topology costs; an unchanged one is served from the
// cache, "cached"), after the first layout of the process, which also
// warms the WebAssembly module.
func BenchmarkTopologySVG(b *testing.B) {
	snap, views := synthHost(benchContainers, benchVMs, benchOVSPorts, 1)
	g := topology.Build(snap, views)
	ctx := context.Background()
	r, err := NewRenderer(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	dot, _, err := DOT(g)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	svg, err := r.render(ctx, dot, g.Merged())
	if err != nil {
		b.Fatal(err)
	}
	first := time.Since(start)
	b.Run("layout", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			if _, err := r.render(ctx, dot, g.Merged()); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu0)
		b.ReportMetric(float64(first.Milliseconds()), "first-ms")
		b.ReportMetric(float64(len(svg)), "svg-bytes")
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			if _, _, err := r.SVG(ctx, g); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu0)
	})
}
