package pcapfile

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tangfeixiong/nta/internal/frametest"
)

// testPackets is the traffic written to the test files: 5 packets of one
// TCP flow, 2 of a UDP flow, one ARP and one truncated frame.
var t0 = time.Now()

func testPackets(t testing.TB) [][]byte {
	var ps [][]byte
	for range 5 {
		ps = append(ps, frametest.TCP4Frame(t, "10.0.0.1", "10.0.0.2", 40000, 443, 1000))
	}
	for range 2 {
		ps = append(ps, frametest.UDP4Frame(t, "10.0.0.3", "10.0.0.4", 5000, 53, 30))
	}
	ps = append(ps, frametest.ARPFrame(t, layers.ARPReply, frametest.MACA, "10.0.0.1"))
	ps = append(ps, frametest.TCP4Frame(t, "10.0.0.1", "10.0.0.2", 1, 2, 0)[:20])
	return ps
}

func writePcap(t testing.TB, ps [][]byte) []byte {
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(p), Length: len(p)}
		if err := w.WritePacket(ci, p); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestAnalyzePcap(t *testing.T) {
	ps := testPackets(t)
	var total uint64
	for _, p := range ps {
		total += uint64(len(p))
	}
	file := writePcap(t, ps)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(file)
	zw.Close()
	for name, data := range map[string][]byte{"pcap": file, "pcap.gz": gz.Bytes()} {
		rep, err := Analyze(bytes.NewReader(data), AnalyzeOptions{Top: 1})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rep.Format != "pcap" || rep.Packets != uint64(len(ps)) || rep.Bytes != total {
			t.Fatalf("%s: format %s packets %d bytes %d, want pcap %d %d", name, rep.Format, rep.Packets, rep.Bytes, len(ps), total)
		}
		if len(rep.TopFlows) != 1 || rep.TopFlows[0].Packets != 5 || rep.TopFlows[0].DstPort != "443" {
			t.Fatalf("%s: top flows %+v", name, rep.TopFlows)
		}
		i := rep.Interfaces[0]
		if i.Name != "pcap" || i.IP.Packets != 7 || i.NonIP.Packets != 1 || i.Errors.Packets != 1 || i.Flows != 2 ||
			i.ErrorReasons["ipv4_truncated"] != 1 || i.EtherTypes["0x0806"] != 1 || i.ARPBindings != 1 {
			t.Fatalf("%s: interface report %+v", name, i)
		}
		if !rep.First.Equal(t0) || !rep.Last.Equal(t0.Add(8*time.Millisecond)) {
			t.Errorf("%s: first %s last %s", name, rep.First, rep.Last)
		}
	}
}

func TestAnalyzePcapngInterfacesAndDirection(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "veth1", LinkType: layers.LinkTypeEthernet, SnapLength: 65535},
		pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := w.AddInterface(pcapgo.NgInterface{Name: "br0", LinkType: layers.LinkTypeEthernet, SnapLength: 65535})
	if err != nil {
		t.Fatal(err)
	}
	out := pcapgo.NgPacketOptions{Flags: &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound}}
	f := frametest.TCP4Frame(t, "10.0.0.1", "10.0.0.2", 40000, 443, 100)
	for i := range 4 {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Second), CaptureLength: 60, Length: len(f)}
		if i%2 == 1 {
			ci.InterfaceIndex = id
		}
		if err := w.WritePacketWithOptions(ci, f[:60], out); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rep, err := Analyze(bytes.NewReader(buf.Bytes()), AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Format != "pcapng" || len(rep.Interfaces) != 2 || rep.Bytes != uint64(4*len(f)) {
		t.Fatalf("report %+v", rep)
	}
	for _, i := range rep.Interfaces {
		if (i.Name != "br0" && i.Name != "veth1") || i.Total.Packets != 2 {
			t.Errorf("interface %+v", i)
		}
	}
	for _, fl := range rep.TopFlows {
		if fl.Direction != "out" || fl.Bytes != uint64(2*len(f)) {
			t.Errorf("flow %+v: want direction out from the EPB flags, wire length bytes", fl)
		}
	}
	var text, js bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "10.0.0.1:40000") || !strings.Contains(text.String(), "br0") {
		t.Errorf("text report:\n%s", text.String())
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Packets != 4 {
		t.Fatalf("json round trip: %v %+v", err, back)
	}
}

func TestAnalyzeTruncatedAndCorrupt(t *testing.T) {
	ps := testPackets(t)
	file := writePcap(t, ps)
	// cut in the middle of the 4th packet's data
	cut := 24 + 3*(16+len(ps[0])) + 16 + 10
	rep, err := Analyze(bytes.NewReader(file[:cut]), AnalyzeOptions{})
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "truncated after packet 3") {
		t.Fatalf("truncated file: err %v", err)
	}
	if rep == nil || rep.Packets != 3 || rep.TopFlows[0].Packets != 3 {
		t.Fatalf("truncated file: want the totals of the 3 packets before the cut, got %+v", rep)
	}
	// pcapng cut inside a block
	var buf bytes.Buffer
	w, _ := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	for i, p := range ps {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i)), CaptureLength: len(p), Length: len(p)}, p)
	}
	w.Flush()
	ng := buf.Bytes()
	rep, err = Analyze(bytes.NewReader(ng[:len(ng)-10]), AnalyzeOptions{})
	if err == nil || rep == nil || rep.Packets != uint64(len(ps)-1) {
		t.Fatalf("truncated pcapng: err %v report %+v", err, rep)
	}
	// a corrupt record length
	bad := append([]byte(nil), file...)
	copy(bad[24+8:24+12], []byte{0xff, 0xff, 0xff, 0x7f})
	if _, err := Analyze(bytes.NewReader(bad), AnalyzeOptions{}); err == nil || !strings.Contains(err.Error(), "corrupt after packet 0") {
		t.Fatalf("corrupt record: err %v", err)
	}
	if _, err := Analyze(strings.NewReader("hello, world"), AnalyzeOptions{}); !errors.Is(err, ErrNotCapture) {
		t.Fatalf("text file: err %v, want ErrNotCapture", err)
	}
	if _, err := Analyze(strings.NewReader(""), AnalyzeOptions{}); !errors.Is(err, ErrNotCapture) {
		t.Fatalf("empty file: err %v, want ErrNotCapture", err)
	}
}
