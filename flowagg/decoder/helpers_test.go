package decoder_test

import (
	"testing"
	"time"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// EtherTypes of the test frames.
const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
)

var t0 = time.Now() // flows must be fresh for PublishSnapshot (wall clock)

// testTable returns a table of a fresh aggregator: the decoder's results as
// the flow table counts them.
func testTable(cfg flowagg.Config) (*flowagg.Aggregator, *flowagg.IfaceTable) {
	a := flowagg.NewAggregator(cfg)
	return a, a.Interface("eth0")
}

// flowOf returns the flow with key k from a snapshot.
func flowOf(s *flowagg.TableSnapshot, k decoder.FlowKey) (flowagg.Flow, bool) {
	for _, f := range s.Flows {
		if f.Key == k {
			return f, true
		}
	}
	return flowagg.Flow{}, false
}

func checkSums(tb testing.TB, s *flowagg.TableSnapshot) {
	tb.Helper()
	if err := s.CheckSums(); err != nil {
		tb.Fatal(err)
	}
}
