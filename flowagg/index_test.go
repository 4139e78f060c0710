package flowagg

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// TestIndexAgainstMap churns a table (inserts, budget folds, expiry,
// rebuild) and checks after each step that every flow is found at its
// position through the index, like a map[decoder.FlowKey]int would say.
func TestIndexAgainstMap(t *testing.T) {
	_, tb := testTable(Config{MaxFlowsPerInterface: 3000, MaxFlowsTotal: 3000, IdleTimeout: time.Second})
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(step string) {
		t.Helper()
		if tb.index.n != len(tb.flows) {
			t.Fatalf("%s: index holds %d entries, table %d flows", step, tb.index.n, len(tb.flows))
		}
		for i := range tb.flows {
			k := tb.flows[i].Key
			if _, p := tb.index.find(&k, tb.index.hash(&k), tb.flows); p != i {
				t.Fatalf("%s: flow %d found at %d", step, i, p)
			}
		}
		var absent decoder.FlowKey
		absent.Proto = 99
		if _, p := tb.index.find(&absent, tb.index.hash(&absent), tb.flows); p != -1 {
			t.Fatalf("%s: absent key found at %d", step, p)
		}
	}
	now := t0.UnixNano()
	for round := range 20 {
		for range 1000 + rng.IntN(3000) {
			k := decoder.FlowKey{Family: 4, Proto: 17, SrcPort: uint16(rng.IntN(64)), DstPort: uint16(rng.IntN(64))}
			k.Src[0] = byte(rng.IntN(4))
			tb.addFlow(&k, uint64(1+rng.IntN(1500)), now+int64(rng.IntN(2e9)))
		}
		check("after inserts")
		now += 2e9
		tb.maintain(now, true)
		check("after expiry")
		if round%5 == 4 {
			tb.rebuild()
			check("after rebuild")
		}
	}
}
