package flowagg

import (
	"testing"
	"time"

	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// Frames for the tests are built by internal/frametest, independently of
// the decoder under test.

var t0 = time.Now() // flows must be fresh for PublishSnapshot (wall clock)

// testTable returns a table of a fresh aggregator.
func testTable(cfg Config) (*Aggregator, *IfaceTable) {
	a := NewAggregator(cfg)
	return a, a.Interface("eth0")
}

// flowOf returns the flow with key k from a snapshot.
func flowOf(s *TableSnapshot, k decoder.FlowKey) (Flow, bool) {
	for _, f := range s.Flows {
		if f.Key == k {
			return f, true
		}
	}
	return Flow{}, false
}

func checkSums(tb testing.TB, s *TableSnapshot) {
	tb.Helper()
	if err := s.CheckSums(); err != nil {
		tb.Fatal(err)
	}
}
