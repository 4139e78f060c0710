package main

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/tangfeixiong/nta/collector"
	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
	"github.com/tangfeixiong/nta/internal/frametest"
)

// udpFrame is an Ethernet/IPv4/UDP frame built with gopacket.
func udpFrame(t *testing.T, src, dst string, sport, dport uint16) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload("hello")); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// flowRunner is the collector registry with the flows collector over a.
func flowRunner(t *testing.T, a *flowagg.Aggregator) *collector.Runner {
	t.Helper()
	r, err := collector.NewRunner([]string{"flows"}, &collector.Sources{Flows: &collector.Flows{Aggregator: a}},
		5*time.Second, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// flowServer serves newMetricsHandler over the flows collector of a table
// holding 3 flows, and extra static gatherers.
func flowServer(t *testing.T, maxRequests int, extra ...prometheus.Gatherer) (*httptest.Server, *metricsHandler) {
	t.Helper()
	a := flowagg.NewAggregator(flowagg.Config{SnapshotWait: time.Millisecond})
	tb := a.Interface("eth0")
	for i := range 3 {
		f := udpFrame(t, "10.0.0.1", "10.0.0.2", uint16(1000+i), 53)
		tb.Add(f, len(f), decoder.DirIn, time.Now())
	}
	tb.PublishSnapshot()
	h := newMetricsHandler(flowRunner(t, a), prometheus.Gatherers(extra), maxRequests, 0, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h.(*metricsHandler)
}

func get(t *testing.T, url string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// A Transport that leaves Accept-Encoding and the body alone.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// families decodes a response in whatever format and encoding it has.
func families(t *testing.T, resp *http.Response) map[string]*dto.MetricFamily {
	t.Helper()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = gz
	}
	format := expfmt.ResponseFormat(resp.Header)
	if format.FormatType() == expfmt.TypeTextPlain {
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(body)
		if err != nil {
			t.Fatal(err)
		}
		return mfs
	}
	mfs := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(body, format)
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			return mfs
		} else if err != nil {
			t.Fatal(err)
		}
		mfs[mf.GetName()] = mf
	}
}

const (
	protobufAccept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3"
	// prometheus2Accept is what Prometheus 2.42 sends by default.
	prometheus2Accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)

func TestMetricsHandlerFormats(t *testing.T) {
	srv, _ := flowServer(t, 0)
	// The protobuf answer comes from promhttp over client_golang: the
	// reference the fast text path must match.
	ref := get(t, srv.URL, "Accept", protobufAccept)
	if ct := ref.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.google.protobuf") {
		t.Fatalf("protobuf request answered with %q", ct)
	}
	want := families(t, ref)
	for _, mf := range want { // the text format has no created timestamps
		for _, m := range mf.GetMetric() {
			if m.Counter != nil {
				m.Counter.CreatedTimestamp = nil
			}
		}
	}
	for _, name := range []string{"nta_flow_bytes_total", "nta_flow_packets_total"} {
		if n := len(want[name].GetMetric()); n != 3 {
			t.Fatalf("protobuf: %d series of %s, want 3", n, name)
		}
	}
	for _, c := range []struct {
		name     string
		header   []string
		encoding string
	}{
		{"no headers (curl)", nil, ""},
		{"Prometheus 2.42", []string{"Accept", prometheus2Accept, "Accept-Encoding", "gzip"}, "gzip"},
		{"gzip", []string{"Accept-Encoding", "gzip"}, "gzip"},
		{"identity preferred", []string{"Accept-Encoding", "gzip;q=0.5, identity"}, ""},
		{"gzip refused", []string{"Accept-Encoding", "gzip;q=0"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := get(t, srv.URL+"/metrics", c.header...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s", resp.Status)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
				t.Errorf("Content-Type %q, want the text format", ct)
			}
			if enc := resp.Header.Get("Content-Encoding"); enc != c.encoding {
				t.Errorf("Content-Encoding %q, want %q", enc, c.encoding)
			}
			got := families(t, resp)
			if len(got) != len(want) {
				t.Errorf("%d families, want %d", len(got), len(want))
			}
			for name, mf := range want {
				if name == "nta_collector_duration_seconds" {
					continue // differs from scrape to scrape
				}
				if !proto.Equal(mf, got[name]) {
					t.Errorf("%s differs from the protobuf answer:\ntext:     %v\nprotobuf: %v", name, got[name], mf)
				}
			}
		})
	}
}

func TestMetricsHandlerNameFilter(t *testing.T) {
	srv, _ := flowServer(t, 0)
	got := families(t, get(t, srv.URL+"/metrics?name[]=nta_flow_packets_total"))
	if len(got) != 1 || len(got["nta_flow_packets_total"].GetMetric()) != 3 {
		t.Fatalf("name[] filter: got %v", got)
	}
}

func TestMetricsHandlerMaxRequests(t *testing.T) {
	srv, h := flowServer(t, 1)
	h.inFlight <- struct{}{} // one scrape in flight
	if resp := get(t, srv.URL); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %s with the limit reached, want 503", resp.Status)
	}
	<-h.inFlight
	if resp := get(t, srv.URL); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, want 200", resp.Status)
	}
}

// A gather error is logged and what was gathered still served, flows too.
func TestMetricsHandlerContinueOnError(t *testing.T) {
	failing := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return nil, errors.New("collector exploded")
	})
	srv, _ := flowServer(t, 0, failing)
	resp := get(t, srv.URL)
	got := families(t, resp)
	if resp.StatusCode != http.StatusOK || len(got["nta_flow_bytes_total"].GetMetric()) != 3 || got["nta_flow_table_flows"] == nil {
		t.Fatalf("status %s, families %v", resp.Status, got)
	}
}

// Concurrent scrapes share the flow collector's snapshot hand-over: each
// still gets every flow series (run with -race).
func TestMetricsHandlerConcurrent(t *testing.T) {
	srv, _ := flowServer(t, 0)
	errs := make(chan string, 16)
	for i := range cap(errs) {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			if i%2 == 1 {
				req.Header.Set("Accept", protobufAccept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			var n int
			dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
			for {
				var mf dto.MetricFamily
				if dec.Decode(&mf) != nil {
					break
				}
				if name := mf.GetName(); name == "nta_flow_bytes_total" || name == "nta_flow_packets_total" {
					n += len(mf.GetMetric())
				}
			}
			if n != 6 {
				errs <- fmt.Sprintf("scrape %d: %d flow series, want 6", i, n)
				return
			}
			errs <- ""
		}()
	}
	for range cap(errs) {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}

// No flows yet (capture just started, or nothing selected): every other
// family is still served in full.
func TestMetricsHandlerWithoutFlows(t *testing.T) {
	a := flowagg.NewAggregator(flowagg.Config{SnapshotWait: time.Millisecond})
	static := prometheus.NewRegistry()
	static.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "nta_test_marker", Help: "h"}, func() float64 { return 7 }))
	srv := httptest.NewServer(newMetricsHandler(flowRunner(t, a), static, 0, 0, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	for _, enc := range []string{"", "gzip"} {
		resp := get(t, srv.URL, "Accept-Encoding", enc)
		got := families(t, resp)
		if got["nta_test_marker"].GetMetric()[0].GetGauge().GetValue() != 7 || got["nta_collector_success"] == nil {
			t.Errorf("Accept-Encoding %q: registry families missing without flows: %v", enc, got)
		}
	}
}

// TestMetricsHandlerScrapesConsistent: concurrent scrapes over tables that
// change between snapshots each see table counters consistent with their
// own flow series: per interface, the flow packets (overflow included) equal
// the input packets minus non-IP and undecodable ones. Before each scrape
// had its own snapshots, scrape A could export the flow series of scrape
// B's snapshot next to its own table counters.
func TestMetricsHandlerScrapesConsistent(t *testing.T) {
	a := flowagg.NewAggregator(flowagg.Config{SnapshotWait: 200 * time.Millisecond})
	ip := udpFrame(t, "10.0.0.1", "10.0.0.2", 1000, 53)
	arp := frametest.ARPFrame(t, 2, frametest.MACA, "10.0.0.1")
	bad := ip[:20] // cut inside the IPv4 header
	stop := make(chan struct{})
	var owners sync.WaitGroup
	for _, name := range []string{"eth0", "eth1"} {
		tb := a.Interface(name)
		owners.Go(func() { // the capture loop: the table's only writer
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				for j := range 50 {
					f := ip
					switch (i + j) % 7 {
					case 3:
						f = arp
					case 5:
						f = bad
					}
					tb.Add(f, len(f), decoder.DirIn, time.Now())
				}
				tb.Publish()
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
	defer func() { close(stop); owners.Wait() }()
	srv := httptest.NewServer(newMetricsHandler(flowRunner(t, a), prometheus.Gatherers{}, 0, 0, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)

	const scrapes = 64
	errs := make(chan error, scrapes)
	var wg sync.WaitGroup
	for i := range scrapes {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			if i%4 == 3 {
				req.Header.Set("Accept", protobufAccept) // the client_golang path too
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			mfs := map[string]*dto.MetricFamily{}
			dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
			for {
				mf := &dto.MetricFamily{}
				if err := dec.Decode(mf); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					errs <- err
					return
				}
				mfs[mf.GetName()] = mf
			}
			sum := func(name string) map[string]float64 {
				out := map[string]float64{}
				for _, m := range mfs[name].GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "interface" {
							out[l.GetValue()] += m.GetCounter().GetValue()
						}
					}
				}
				return out
			}
			flows, in := sum("nta_flow_packets_total"), sum("nta_flow_input_packets_total")
			nonIP, undecodable := sum("nta_capture_ethertype_packets_total"), sum("nta_capture_decode_errors_total")
			if len(in) != 2 {
				errs <- fmt.Errorf("scrape %d: input counters of %d interfaces, want 2", i, len(in))
				return
			}
			for ifc, n := range in {
				if want := n - nonIP[ifc] - undecodable[ifc]; flows[ifc] != want {
					errs <- fmt.Errorf("scrape %d, %s: flow packets %v, want input %v - non-IP %v - undecodable %v = %v",
						i, ifc, flows[ifc], n, nonIP[ifc], undecodable[ifc], want)
					return
				}
			}
			errs <- nil
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
