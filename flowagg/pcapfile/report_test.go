package pcapfile

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tangfeixiong/nta/internal/frametest"
)

// farFuturePcapng is a pcapng file whose one interface has an if_tsoffset
// of offset seconds: its packets are stamped that far after t0.
func farFuturePcapng(t testing.TB, offset uint64, frame []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "far", LinkType: layers.LinkTypeEthernet,
		SnapLength: 65535, TimestampOffset: offset}, pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Second), CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReportJSONFarFuture: a file stamped in year ~21000 (beyond what
// time.Time's JSON encoding accepts) still gives a JSON report, with the
// same timestamps the text report prints.
func TestReportJSONFarFuture(t *testing.T) {
	f := frametest.UDP4Frame(t, "10.0.0.1", "10.0.0.2", 5000, 53, 20)
	rep, err := Analyze(bytes.NewReader(farFuturePcapng(t, 600e9, f)), AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if y := rep.Last.Year(); y < 10000 {
		t.Fatalf("test file: last packet in year %d, want beyond 9999", y)
	}
	var js, text bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Packets  int    `json:"packets"`
		First    string `json:"first"`
		Last     string `json:"last"`
		TopFlows []struct {
			First, Last string
		} `json:"top_flows"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("JSON report does not parse: %v\n%s", err, js.String())
	}
	if got.Packets != 2 || len(got.TopFlows) != 1 {
		t.Fatalf("JSON report %+v", got)
	}
	want := rep.Last.UTC().Format(time.RFC3339Nano)
	if got.Last != want || !strings.Contains(text.String(), want) {
		t.Errorf("last = %q in JSON, want %q as the text report prints:\n%s", got.Last, want, text.String())
	}
	if got.First != rep.First.UTC().Format(time.RFC3339Nano) || got.TopFlows[0].First == "" {
		t.Errorf("first = %q, flow %+v", got.First, got.TopFlows[0])
	}
}

// TestReportJSONOrdinaryTimesUnchanged: years 0-9999 are written exactly as
// time.Time writes them, so readers of the JSON see no change.
func TestReportJSONOrdinaryTimesUnchanged(t *testing.T) {
	ts := time.Date(2026, 12, 3, 12, 0, 0, 123456789, time.UTC)
	want, _ := json.Marshal(ts)
	got, err := json.Marshal(jsonTime(ts))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("jsonTime = %s, %v; want %s", got, err, want)
	}
	b, _ := json.Marshal(Report{Format: "pcap", Interfaces: []IfaceReport{}, TopFlows: []FlowReport{}})
	if strings.Contains(string(b), "first") {
		t.Errorf("zero first/last are written: %s", b)
	}
}

// TestNotCaptureGivesNoReport: input that is not a capture file gives no
// report to print, only the error.
func TestNotCaptureGivesNoReport(t *testing.T) {
	for _, in := range []string{"", "hello, world", "\x1f\x8bnot gzip"} {
		rep, err := Analyze(strings.NewReader(in), AnalyzeOptions{})
		if err == nil || rep != nil {
			t.Errorf("Analyze(%q) = %+v, %v; want no report and an error", in, rep, err)
		}
	}
}
