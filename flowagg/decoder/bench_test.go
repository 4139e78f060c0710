package decoder_test

import (
	"testing"
	"time"

	"github.com/tangfeixiong/nta/flowagg/decoder"
)

//	go test -run=^$ -bench=Decode -benchmem ./flowagg/decoder/

// BenchmarkDecode is the decoder alone over a mix of protocols.
func BenchmarkDecode(b *testing.B) {
	var frames [][]byte
	var links []decoder.LinkType
	for _, c := range decodeCases(b) {
		if c.kind == decoder.KindFlow {
			frames = append(frames, c.frame)
			links = append(links, c.link)
		}
	}
	var d decoder.Decoder
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var r decoder.Result
		j := i % len(frames)
		d.Decode(links[j], frames[j], 1, &r)
	}
	el := time.Since(start)
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N), "ns/pkt")
	b.ReportMetric(float64(b.N)/el.Seconds()/1e6, "Mpps")
}
