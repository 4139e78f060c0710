package pcapfile

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tangfeixiong/nta/internal/frametest"
)

// FuzzAnalyze feeds arbitrary bytes to the reading path of `analyze`
// (magic detection, gzip, pcap and pcapng through the decoder and tables):
// nothing may panic, a capture file always gives a report, the report's
// totals are the sums of its interfaces, and both renderings succeed.
//
//	go test -run='^$' -fuzz=FuzzAnalyze -fuzztime=10s ./flowagg/pcapfile/
func FuzzAnalyze(f *testing.F) {
	ps := testPackets(f)
	f.Add(writePcap(f, ps))
	var ng bytes.Buffer
	w, _ := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	for i, p := range ps {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(p), Length: len(p)}, p)
	}
	w.Flush()
	f.Add(ng.Bytes())
	f.Add(farFuturePcapng(f, 600e9, frametest.UDP4Frame(f, "10.0.0.1", "10.0.0.2", 1, 2, 3)))
	f.Add([]byte("\x0a\x0d\x0d\x0a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Analyze(bytes.NewReader(data), AnalyzeOptions{Top: 3})
		if rep == nil {
			if err == nil {
				t.Fatal("no report and no error")
			}
			return
		}
		var packets, nbytes uint64
		for _, i := range rep.Interfaces {
			packets += i.Total.Packets
			nbytes += i.Total.Bytes
		}
		if packets != rep.Packets || nbytes != rep.Bytes {
			t.Fatalf("totals %d/%d, interfaces sum to %d/%d", rep.Packets, rep.Bytes, packets, nbytes)
		}
		if len(rep.TopFlows) > 3 {
			t.Fatalf("%d top flows, asked for 3", len(rep.TopFlows))
		}
		if err := rep.WriteJSON(io.Discard); err != nil {
			t.Fatalf("WriteJSON: %v", err)
		}
		if err := rep.WriteText(io.Discard); err != nil {
			t.Fatalf("WriteText: %v", err)
		}
	})
}
