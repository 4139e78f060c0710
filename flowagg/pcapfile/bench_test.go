package pcapfile

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tangfeixiong/nta/internal/frametest"
)

// manyInterfacesPcapng is a pcapng file of n interface blocks with one UDP
// packet on each.
func manyInterfacesPcapng(b *testing.B, n int) []byte {
	b.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "if0", LinkType: layers.LinkTypeEthernet, SnapLength: 65535},
		pcapgo.NgWriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if _, err := w.AddInterface(pcapgo.NgInterface{Name: fmt.Sprintf("if%d", i), LinkType: layers.LinkTypeEthernet, SnapLength: 65535}); err != nil {
			b.Fatal(err)
		}
	}
	f := frametest.UDP4Frame(b, "10.0.0.1", "10.0.0.2", 5000, 53, 20)
	for i := range n {
		ci := gopacket.CaptureInfo{Timestamp: t0, CaptureLength: len(f), Length: len(f), InterfaceIndex: i}
		if err := w.WritePacket(ci, f); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkAnalyzeInterfaces reads pcapng files of 20k and 100k
// interfaces, one packet each: the cost must grow linearly with them.
//
//	go test -run '^$' -bench AnalyzeInterfaces -benchmem -benchtime 1x ./flowagg/pcapfile/
func BenchmarkAnalyzeInterfaces(b *testing.B) {
	for _, n := range []int{5000, 20000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			file := manyInterfacesPcapng(b, n)
			b.ResetTimer()
			for b.Loop() {
				rep, err := Analyze(bytes.NewReader(file), AnalyzeOptions{})
				if err != nil || len(rep.Interfaces) != n || rep.Packets != uint64(n) {
					b.Fatalf("%d interfaces, %d packets, %v", len(rep.Interfaces), rep.Packets, err)
				}
			}
		})
	}
}
