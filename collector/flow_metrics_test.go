package collector

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
	"github.com/tangfeixiong/nta/internal/frametest"
)

type mapResolver map[string]string

func (m mapResolver) NameIP(a netip.Addr) string { return m[a.String()] }

// exporterCollector is a prometheus.Collector (unchecked) over a collect function.
type exporterCollector func(ch chan<- prometheus.Metric)

func (exporterCollector) Describe(chan<- *prometheus.Desc) {}

func (e exporterCollector) Collect(ch chan<- prometheus.Metric) { e(ch) }

// testFlows returns the flows collector over a with resolver res (may be nil).
func testFlows(a *flowagg.Aggregator, res Resolver) *flowsCollector {
	return &flowsCollector{src: &Sources{Flows: &Flows{Aggregator: a}}, flows: newFlowExporter(a, res)}
}

// updater is a prometheus.Collector running one Collector's Update with ctx.
func updater(tb testing.TB, ctx context.Context, c Collector) prometheus.Collector {
	return exporterCollector(func(ch chan<- prometheus.Metric) {
		if err := c.Update(ctx, ch); err != nil {
			tb.Errorf("Update: %v", err)
		}
	})
}

// scrape registers c, gathers and returns the text exposition.
func scrape(tb testing.TB, c prometheus.Collector) string {
	tb.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			tb.Fatalf("encode: %v", err)
		}
	}
	return buf.String()
}

func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, l+"\n") {
			t.Errorf("missing line\n  %s\nin\n%s", l, text)
		}
	}
}

func TestCollectorFullWithResolver(t *testing.T) {
	a := flowagg.NewAggregator(flowagg.Config{MaxFlowsPerInterface: 2, SnapshotWait: time.Millisecond})
	tb := a.Interface("eth0")
	f1 := frametest.TCP4Frame(t, "10.0.0.1", "10.0.0.2", 40000, 80, 100)
	for range 10 {
		tb.Add(f1, len(f1), decoder.DirIn, t0)
	}
	f2 := frametest.UDP4Frame(t, "10.0.0.2", "10.0.0.1", 53, 40001, 0)
	tb.Add(f2, 1000, decoder.DirOut, t0) // wire length larger than captured
	f3 := frametest.UDP4Frame(t, "10.0.0.3", "10.0.0.1", 1, 2, 0)
	tb.Add(f3, len(f3), decoder.DirIn, t0) // third flow: budget 2 folds the smallest (f2)
	tb.Add(f1[:20], 20, decoder.DirIn, t0)
	arpf := frametest.ARPFrame(t, 2, frametest.MACA, "10.0.0.1")
	tb.Add(arpf, len(arpf), decoder.DirIn, t0)
	tb.PublishSnapshot()

	c := updater(t, context.Background(), testFlows(a, mapResolver{"10.0.0.1": "web", "10.0.0.2": "db"}))
	text := scrape(t, c)
	n1 := len(f1)
	wantLines(t, text,
		`nta_flow_bytes_total{direction="in",dst="10.0.0.2",dst_name="db",dst_port="80",interface="eth0",proto="tcp",src="10.0.0.1",src_name="web",src_port="40000"} `+itoa(10*n1),
		`nta_flow_packets_total{direction="in",dst="10.0.0.2",dst_name="db",dst_port="80",interface="eth0",proto="tcp",src="10.0.0.1",src_name="web",src_port="40000"} 10`,
		`nta_flow_bytes_total{direction="in",dst="10.0.0.1",dst_name="web",dst_port="2",interface="eth0",proto="udp",src="10.0.0.3",src_name="",src_port="1"} `+itoa(len(f3)),
		`nta_flow_bytes_total{direction="out",dst="overflow",dst_name="",dst_port="overflow",interface="eth0",proto="overflow",src="overflow",src_name="",src_port="overflow"} 1000`,
		`nta_flow_packets_total{direction="out",dst="overflow",dst_name="",dst_port="overflow",interface="eth0",proto="overflow",src="overflow",src_name="",src_port="overflow"} 1`,
		`nta_flow_folded_flows_total{interface="eth0"} 1`,
		`nta_flow_table_flows{interface="eth0"} 2`,
		`nta_flow_table_budget{scope="interface"} 2`,
		`nta_capture_decode_errors_total{interface="eth0",reason="ipv4_truncated"} 1`,
		`nta_capture_ethertype_packets_total{ethertype="0x0806",interface="eth0"} 1`,
		`nta_arp_bindings{interface="eth0",ip="10.0.0.1",mac="02:00:00:00:00:0a",name="web"} 1`,
		`nta_flow_input_packets_total{interface="eth0"} 14`,
	)
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	a.Release("eth0")
	if text := scrape(t, c); strings.Contains(text, `interface="eth0"`) {
		t.Fatalf("released interface still exported:\n%s", text)
	}
}

func TestCollectorWorkloadAndHost(t *testing.T) {
	for _, g := range []flowagg.Granularity{flowagg.GranularityWorkloadPair, flowagg.GranularityHostPair, flowagg.GranularityServerPort} {
		a := flowagg.NewAggregator(flowagg.Config{Granularity: g, SnapshotWait: time.Millisecond})
		tb := a.Interface("br0")
		for _, f := range [][]byte{
			frametest.TCP4Frame(t, "172.17.0.2", "172.17.0.9", 40000, 5432, 0),
			frametest.TCP4Frame(t, "172.17.0.3", "172.17.0.9", 40001, 5432, 0),
			frametest.TCP4Frame(t, "172.17.0.2", "8.8.8.8", 40002, 443, 0),
		} {
			tb.Add(f, 100, decoder.DirIn, t0)
		}
		tb.PublishSnapshot()
		res := mapResolver{"172.17.0.2": "app", "172.17.0.3": "app", "172.17.0.9": "postgres"}
		text := scrape(t, updater(t, context.Background(), testFlows(a, res)))
		switch g {
		case flowagg.GranularityWorkloadPair:
			wantLines(t, text,
				`nta_flow_bytes_total{direction="in",dst="postgres",interface="br0",proto="tcp",src="app"} 200`,
				`nta_flow_bytes_total{direction="in",dst="8.8.8.8",interface="br0",proto="tcp",src="app"} 100`)
		case flowagg.GranularityHostPair:
			wantLines(t, text,
				`nta_flow_bytes_total{direction="in",dst="172.17.0.9",dst_name="postgres",interface="br0",proto="tcp",src="172.17.0.2",src_name="app"} 100`)
		case flowagg.GranularityServerPort:
			wantLines(t, text,
				`nta_flow_bytes_total{direction="in",dst="172.17.0.9",dst_name="postgres",dst_port="5432",interface="br0",proto="tcp",src="172.17.0.2",src_name="app",src_port=""} 100`)
		}
	}
}
