package collector

import (
	"bytes"
	"context"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"

	"github.com/gopacket/gopacket/layers"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
	"github.com/tangfeixiong/nta/internal/frametest"
)

// textTestAggregator has two interfaces (one whose name needs escaping),
// IPv4 and IPv6 flows in both directions, counters past 1e6 (exponent form)
// and an overflow series in each direction (budget 4 flows per interface).
func textTestAggregator(t *testing.T, g flowagg.Granularity) *flowagg.Aggregator {
	t.Helper()
	a := flowagg.NewAggregator(flowagg.Config{Granularity: g, MaxFlowsPerInterface: 4, SnapshotWait: time.Millisecond})
	v6 := frametest.IP6("fd00::1", "fd00::2", layers.IPProtocolTCP)
	frames := []struct {
		f       []byte
		wire    int
		dir     decoder.Direction
		packets int
	}{
		{frametest.TCP4Frame(t, "10.0.0.1", "10.0.0.2", 40000, 80, 0), 100, decoder.DirIn, 9},
		{frametest.TCP4Frame(t, "10.0.0.2", "10.0.0.1", 80, 40000, 0), 3_000_000, decoder.DirOut, 8},
		{frametest.Serialize(t, append(frametest.Eth(layers.EthernetTypeIPv6), v6, frametest.TCP(40000, 443, v6), frametest.Payload(0))...), 80, decoder.DirIn, 6},
		{frametest.UDP4Frame(t, "10.0.0.1", "10.0.0.9", 40003, 53, 0), 60, decoder.DirOut, 5},
		{frametest.UDP4Frame(t, "10.0.0.3", "10.0.0.10", 53, 40001, 0), 70, decoder.DirIn, 1},  // folded
		{frametest.TCP4Frame(t, "10.0.0.9", "10.0.0.1", 40002, 443, 0), 60, decoder.DirOut, 1}, // folded
	}
	for _, name := range []string{"eth0", `we"ird\if`} {
		tb := a.Interface(name)
		for _, fr := range frames {
			for range fr.packets {
				tb.Add(fr.f, fr.wire, fr.dir, t0)
			}
		}
		tb.PublishSnapshot()
	}
	return a
}

// textTestResolver names some addresses, one with every character the text
// format escapes in label values.
var textTestResolver = mapResolver{"10.0.0.1": "web", "10.0.0.2": "db \"primary\"\\\nnew line", "10.0.0.9": "a,b=c"}

// renderSlow is the exposition of a full Collector through client_golang;
// renderFast is the split Collector through client_golang followed by
// WriteText, as the /metrics handler serves it.
func renderSlow(t *testing.T, a *flowagg.Aggregator, res Resolver) string {
	return scrape(t, updater(t, context.Background(), testFlows(a, res)))
}

func renderFast(t *testing.T, a *flowagg.Aggregator, res Resolver) (all, flows string) {
	ctx, ft := WithFlowText(context.Background())
	rest := scrape(t, updater(t, ctx, testFlows(a, res)))
	var buf bytes.Buffer
	if err := ft.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	return rest + buf.String(), buf.String()
}

func TestWriteTextMatchesClientGolang(t *testing.T) {
	for _, g := range []flowagg.Granularity{flowagg.GranularityFull, flowagg.GranularityServerPort, flowagg.GranularityHostPair, flowagg.GranularityWorkloadPair} {
		for _, res := range []Resolver{nil, textTestResolver} {
			t.Run(g.String()+"/names="+strconv.FormatBool(res != nil), func(t *testing.T) {
				a := textTestAggregator(t, g)
				slow := renderSlow(t, a, res)
				fast, flows := renderFast(t, a, res)

				want, got := parseText(t, slow), parseText(t, fast)
				for name, mf := range want {
					if !proto.Equal(mf, got[name]) {
						t.Errorf("family %s differs:\nclient_golang: %v\nfast path:     %v", name, mf, got[name])
					}
				}
				for name := range got {
					if want[name] == nil {
						t.Errorf("fast path has extra family %s", name)
					}
				}
				// Byte for byte too: the flow lines of the client_golang
				// exposition are exactly what WriteText wrote.
				var slowFlows strings.Builder
				for _, l := range strings.SplitAfter(slow, "\n") {
					if isFlowLine(l) {
						slowFlows.WriteString(l)
					}
				}
				if slowFlows.String() != flows {
					t.Errorf("flow lines differ:\nclient_golang:\n%s\nfast path:\n%s", slowFlows.String(), flows)
				}
				if !strings.Contains(flows, `interface="we\"ird\\if"`) {
					t.Errorf("escaped interface name missing:\n%s", flows)
				}
				if res != nil && g != flowagg.GranularityWorkloadPair && !strings.Contains(flows, `"db \"primary\"\\\nnew line"`) {
					t.Errorf("escaped workload name missing:\n%s", flows)
				}
				for _, want := range []string{`direction="in",dst="overflow"`, `direction="out",dst="overflow"`, `dst="fd00::2"`, "e+07\n"} {
					if !strings.Contains(flows, want) {
						t.Errorf("want %s in\n%s", want, flows)
					}
				}
			})
		}
	}
}

func isFlowLine(l string) bool {
	for _, n := range []string{flowBytesName, flowPacketsName} {
		if strings.HasPrefix(l, n+"{") || strings.HasPrefix(l, "# HELP "+n+" ") || strings.HasPrefix(l, "# TYPE "+n+" ") {
			return true
		}
	}
	return false
}

func parseText(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return mfs
}

// TestWriteTextPromtool lints the fast path's output with promtool, as
// Prometheus itself would parse it.
func TestWriteTextPromtool(t *testing.T) {
	testenv.RequireCommand(t, "promtool", "Debian package prometheus; scripts/lab-up.sh installs it")
	const promtool = "promtool"
	fast, _ := renderFast(t, textTestAggregator(t, flowagg.GranularityFull), textTestResolver)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(fast)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\ninput:\n%s", err, out, fast)
	}
}

// TestFlowTextPerScrape: with a FlowText in the context the flows collector
// leaves the flow families out and hands its snapshots to that FlowText,
// and only to it; a FlowText of a scrape without the flows collector writes
// nothing.
func TestFlowTextPerScrape(t *testing.T) {
	a := textTestAggregator(t, flowagg.GranularityFull)
	c := testFlows(a, nil)
	ctx1, ft1 := WithFlowText(context.Background())
	if text := scrape(t, updater(t, ctx1, c)); strings.Contains(text, flowBytesName) || !strings.Contains(text, "nta_flow_table_flows") {
		t.Fatalf("with a FlowText: want table metrics and no flow series:\n%s", text)
	}
	_, ft2 := WithFlowText(context.Background())
	var buf bytes.Buffer
	if err := ft2.WriteText(&buf); err != nil || buf.Len() != 0 {
		t.Fatalf("FlowText of another scrape: got %q, %v; want nothing", buf.String(), err)
	}
	if err := ft1.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	first := buf.String()
	if !strings.Contains(first, flowPacketsName+"{") {
		t.Fatalf("WriteText wrote no flow series:\n%s", first)
	}
	buf.Reset()
	if err := ft1.WriteText(&buf); err != nil || buf.String() != first {
		t.Fatalf("WriteText is not repeatable: %v\n%s\n---\n%s", err, first, buf.String())
	}
	empty := flowagg.NewAggregator(flowagg.Config{SnapshotWait: time.Millisecond})
	ctx3, ft3 := WithFlowText(context.Background())
	scrape(t, updater(t, ctx3, testFlows(empty, nil)))
	buf.Reset()
	if err := ft3.WriteText(&buf); err != nil || buf.Len() != 0 {
		t.Fatalf("no flows: got %q, %v; want nothing", buf.String(), err)
	}
}

func TestAppendCounter(t *testing.T) {
	check := func(v uint64) {
		if got, want := string(appendCounter(nil, v)), strconv.FormatFloat(float64(v), 'g', -1, 64); got != want {
			t.Fatalf("appendCounter(%d) = %s, want %s", v, got, want)
		}
	}
	for v := uint64(0); v < 2_000_000; v += 7 {
		check(v)
	}
	for _, v := range []uint64{999_999, 1_000_000, 1_000_001, 1_234_567, 1 << 53, 1<<53 + 1, 123_456_789_012, math.MaxUint64} {
		check(v)
	}
}

func TestAppendEscaped(t *testing.T) {
	for _, c := range []struct {
		in          string
		quote       bool
		want        string
		description string
	}{
		{"plain", true, "plain", "nothing to escape"},
		{"a\"b\\c\nd", true, `a\"b\\c\nd`, "label value"},
		{"a\"b\\c\nd", false, `a"b\\c\nd`, "HELP keeps quotes"},
	} {
		if got := string(appendEscaped([]byte("x"), c.in, c.quote)); got != "x"+c.want {
			t.Errorf("%s: got %q, want %q", c.description, got, "x"+c.want)
		}
	}
}
