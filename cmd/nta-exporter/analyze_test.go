package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// writePcap writes n UDP datagrams of payload bytes from 10.0.0.1:5000 to
// 10.0.0.2:53 and returns the file and each frame's length.
func writePcap(t *testing.T, n, payload int) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "udp.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	udp := &layers.UDP{SrcPort: 5000, DstPort: 53}
	_ = udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(make([]byte, payload))); err != nil {
		t.Fatal(err)
	}
	frame := buf.Bytes()
	for i := 0; i < n; i++ {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000+int64(i), 0), CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			t.Fatal(err)
		}
	}
	return path, len(frame)
}

func TestAnalyzeCommand(t *testing.T) {
	path, frameLen := writePcap(t, 7, 100)
	var out, errOut bytes.Buffer
	if code := run([]string{"analyze", "--format=json", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("analyze JSON: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"10.0.0.1", "10.0.0.2", "5000", "53"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(text, `"packets": 7`) || !strings.Contains(text, `"bytes": `+strconv.Itoa(7*frameLen)) {
		t.Errorf("report does not count 7 packets / %d bytes:\n%s", 7*frameLen, text)
	}

	// Truncated: the totals of the whole packets, a clear error, exit 1.
	b, _ := os.ReadFile(path)
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	_ = os.WriteFile(cut, b[:len(b)-10], 0o644)
	out.Reset()
	errOut.Reset()
	if code := run([]string{"analyze", cut}, &out, &errOut); code != 1 {
		t.Errorf("truncated file: exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "truncated") || !strings.Contains(out.String(), "6") {
		t.Errorf("truncated file: stdout %q stderr %q", out.String(), errOut.String())
	}
	if code := run([]string{"analyze", filepath.Join(t.TempDir(), "missing.pcap")}, &out, &errOut); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}

// TestAnalyzeJSONFarFuture: timestamps past year 9999 (a pcapng interface
// with a large if_tsoffset) still give a JSON report and exit 0.
func TestAnalyzeJSONFarFuture(t *testing.T) {
	path := filepath.Join(t.TempDir(), "far.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapgo.NewNgWriterInterface(f, pcapgo.NgInterface{Name: "far", LinkType: layers.LinkTypeEthernet,
		SnapLength: 65535, TimestampOffset: 600e9}, pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 60)
	if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0), CaptureLength: 60, Length: 60}, frame); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"analyze", "--format=json", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep struct{ Packets int }
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Packets != 1 {
		t.Fatalf("report %+v, %v:\n%s", rep, err, out.String())
	}
}

// TestAnalyzeNotACapture: a file that is not a capture prints no report
// (no table header), and a missing file is one plain line, not a log record.
func TestAnalyzeNotACapture(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	_ = os.WriteFile(text, []byte("hello, this is not a capture\n"), 0o644)
	for _, c := range []struct{ path, want string }{
		{text, "not a pcap or pcapng file"},
		{filepath.Join(dir, "missing.pcap"), "no such file or directory"},
	} {
		var out, errOut bytes.Buffer
		if code := run([]string{"analyze", c.path}, &out, &errOut); code != 1 {
			t.Errorf("%s: exit %d, want 1", c.path, code)
		}
		if out.Len() != 0 {
			t.Errorf("%s: printed a report for a file that is no capture:\n%s", c.path, out.String())
		}
		if e := errOut.String(); !strings.HasPrefix(e, "nta-exporter analyze: ") || !strings.Contains(e, c.want) ||
			strings.Contains(e, "level=") || strings.Count(e, "\n") != 1 {
			t.Errorf("%s: stderr %q, want one plain line saying %q", c.path, e, c.want)
		}
	}
}
