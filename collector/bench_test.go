package collector

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/internal/frametest"
	"github.com/tangfeixiong/nta/ovsview"
)

// BenchmarkGather50Namespaces measures one full scrape (namespaces, links,
// graph) on this host with 50 extra namespaces, each attached by a veth to
// one of two bridges. Needs root; run with
//
//	go test -run '^$' -bench Gather50 -benchmem ./collector/
func BenchmarkGather50Namespaces(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create namespaces")
	}
	const n = 50
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			b.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	cleanup := func() {
		for i := 0; i < n; i++ {
			_ = exec.Command("ip", "netns", "del", fmt.Sprintf("ntab%d", i)).Run()
		}
		_ = exec.Command("ip", "link", "del", "ntabbr0").Run()
		_ = exec.Command("ip", "link", "del", "ntabbr1").Run()
	}
	cleanup()
	b.Cleanup(cleanup)
	run("link", "add", "ntabbr0", "type", "bridge")
	run("link", "add", "ntabbr1", "type", "bridge")
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("ntab%d", i)
		run("netns", "add", ns)
		run("link", "add", fmt.Sprintf("ntabh%d", i), "type", "veth", "peer", "name", "eth0", "netns", ns)
		run("link", "set", fmt.Sprintf("ntabh%d", i), "master", fmt.Sprintf("ntabbr%d", i%2), "up")
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	src := &Sources{Host: NewHostCache(hostnet.NewScanner(hostnet.Options{Logger: logger}), 0)}
	reg, err := NewRunner([]string{"netns", "links", "graph"}, src, 10*time.Second, logger)
	if err != nil {
		b.Fatal(err)
	}
	pr := prometheus.NewPedanticRegistry()
	pr.MustRegister(reg)
	series := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fams, err := pr.Gather()
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			for _, f := range fams {
				series += len(f.GetMetric())
			}
		}
	}
	b.ReportMetric(float64(series), "series")
}

// BenchmarkScrape is one scrape of the flows collector: snapshot, metrics,
// registry Gather and text exposition. Each flow is two series (bytes and
// packets). BenchmarkScrapeText is the same scrape as /metrics serves the
// text format: the flows collector through the registry with a FlowText,
// then FlowText.WriteText.
//
//	go test -run '^$' -bench Scrape -benchmem ./collector/
func BenchmarkScrape10kSeries(b *testing.B)      { benchScrape(b, 5_000, false) }
func BenchmarkScrape100kSeries(b *testing.B)     { benchScrape(b, 50_000, false) }
func BenchmarkScrape100kFlows(b *testing.B)      { benchScrape(b, 100_000, false) }
func BenchmarkScrapeText10kSeries(b *testing.B)  { benchScrape(b, 5_000, true) }
func BenchmarkScrapeText100kSeries(b *testing.B) { benchScrape(b, 50_000, true) }
func BenchmarkScrapeText100kFlows(b *testing.B)  { benchScrape(b, 100_000, true) }

func benchScrape(b *testing.B, flows int, text bool) {
	a := flowagg.NewAggregator(flowagg.Config{MaxFlowsPerInterface: flows, MaxFlowsTotal: flows, IdleTimeout: -1, SnapshotWait: time.Millisecond})
	tb := a.Interface("eth0")
	now := time.Now()
	for _, f := range frametest.Arena(b, flows) {
		tb.Add(f, 64, decoder.DirIn, now)
	}
	c := testFlows(a, nil)
	var buf bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tb.PublishSnapshot() // stands in for the capture loop's Publish
		ctx := context.Background()
		var ft *FlowText
		if text {
			ctx, ft = WithFlowText(ctx)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(updater(b, ctx, c))
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
		if ft != nil {
			if err := ft.WriteText(&buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes/scrape")
	b.ReportMetric(float64(2*flows), "flow-series")
}

// ovsBenchHost is a host with one OVS bridge of n veth ports.
func ovsBenchHost(n int) (*hostnet.Snapshot, ovsview.View) {
	snap := &hostnet.Snapshot{Namespaces: []hostnet.Namespace{hostNS}, Links: []hostnet.Link{hostLo, hostEth0}}
	br := ovsview.Bridge{Name: "ntbo-br0", DatapathType: "netdev"}
	for i := range n {
		name := fmt.Sprintf("ntbo%d", i)
		snap.Links = append(snap.Links, hostnet.Link{Netns: "host", Name: name, Index: 100 + i, Kind: "veth", MTU: 1500, OperState: "up"})
		br.Ports = append(br.Ports, ovsview.Port{Name: name, Tag: -1, Interfaces: []ovsview.Interface{{Name: name, Type: "system", OFPort: i + 1,
			MAC: "0e:00:00:00:00:01", AdminState: "up", LinkState: "up", HasStats: true, Stats: ovsview.Stats{RxBytes: 1000, RxPackets: 10}}}})
	}
	return snap, ovsview.View{Version: "3.1.0", Bridges: []ovsview.Bridge{br}}
}

// BenchmarkGatherOVS200Ports is what the ovs collector and OVS's share of
// the graph add to a gather with 200 OVS ports: links and graph without and
// with the OVS source and collector, side by side.
//
//	go test -run '^$' -bench OVS200 -benchmem ./collector/
func BenchmarkGatherOVS200Ports(b *testing.B) {
	snap, ov := ovsBenchHost(200)
	for _, c := range []struct {
		name       string
		collectors []string
		ovs        OVSSource
	}{
		{"without-ovs", []string{"links", "graph"}, nil},
		{"with-ovs", []string{"links", "graph", "ovs"}, fakeOVS{view: ov}},
		{"graph-only", []string{"graph"}, nil},
		{"graph-only-with-ovs-view", []string{"graph"}, fakeOVS{view: ov}},
		{"ovs-only", []string{"ovs"}, fakeOVS{view: ov}},
	} {
		b.Run(c.name, func(b *testing.B) {
			src := &Sources{Host: fakeHost{snap: snap}, OVS: c.ovs}
			r, err := NewRunner(c.collectors, src, 10*time.Second, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() { // as the /metrics handler serves the text format
				ctx, text := WithFlowText(context.Background())
				reg := prometheus.NewRegistry()
				reg.MustRegister(exporterCollector(func(ch chan<- prometheus.Metric) { r.Run(ctx, ch) }))
				fams, err := reg.Gather()
				if err != nil {
					b.Fatal(err)
				}
				var buf bytes.Buffer
				for _, f := range fams {
					if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
						b.Fatal(err)
					}
				}
				if err := text.WriteText(&buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
