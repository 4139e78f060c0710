package decoder_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// FuzzDecode feeds arbitrary bytes, as any link type, through the decoder
// and a flow table: nothing may panic, and every frame must be counted
// exactly once (as a flow, by EtherType, or as a decode error by reason).
//
//	go test -run=^$ -fuzz=FuzzDecode -fuzztime=20s ./flowagg/
//
// The seed corpus in testdata/fuzz/FuzzDecode holds one frame of every
// protocol the decoder knows (regenerate with NTA_WRITE_FUZZ_CORPUS=1 go
// test -run TestWriteFuzzCorpus ./flowagg/).
func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases(f) {
		f.Add(c.frame, uint8(c.link))
	}
	f.Fuzz(func(t *testing.T, data []byte, link uint8) {
		lt := decoder.LinkType(link % 4)
		var d decoder.Decoder
		var r1, r2 decoder.Result
		k1 := d.Decode(lt, data, 1, &r1)
		k2 := d.Decode(lt, data, 1, &r2)
		if k1 != k2 || r1 != r2 {
			t.Fatalf("decode is not deterministic: %d %+v vs %d %+v", k1, r1, k2, r2)
		}
		if k1 == decoder.KindError && (r1.Reason == decoder.ReasonNone || r1.Reason >= decoder.NumReasons) {
			t.Fatalf("error without a valid reason: %d", r1.Reason)
		}
		a := flowagg.NewAggregator(flowagg.Config{MaxFlowsPerInterface: 4, IdleTimeout: -1})
		tb := a.Interface("fuzz")
		now := time.Now().UnixNano()
		for i := range 3 { // also truncated copies
			tb.AddFrame(lt, data[:len(data)*(3-i)/3], len(data), decoder.DirIn, now)
		}
		checkSums(t, tb.PublishSnapshot())
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("NTA_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set NTA_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz/FuzzDecode")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, c := range decodeCases(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint8(%d)\n", c.frame, uint8(c.link))
		name := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
