package flowagg

import (
	"sync/atomic"
	"time"
)

// The flow budget.
//
// A table never holds more flows than its limit: min(MaxFlowsPerInterface,
// max(1, MaxFlowsTotal / interfaces)). When a new flow finds the table full,
// the table folds its smallest quarter (by bytes; among equal byte counts the
// older entries first) into the overflow counters of the interface, one per
// direction, and removes them. Every new flow therefore gets its own entry,
// the largest flows keep their series, and
//
//	sum(flows) + overflow + expired == total IP traffic of the interface
//
// holds at every instant. A folded flow that sends again starts a new entry
// at zero, like a flow that expired. Finding the quarter is a quickselect
// over the byte counts: O(n) per compaction, once every n/4 new flows, so
// O(1) amortized per new flow; the capture loop pauses for one compaction
// (a few ms per 100k flows, see BenchmarkAggregateFlood) and the ring
// absorbs it. A snapshot copy in progress is finished first, since
// compaction moves flows in the slice.
//
// Flows removed because the table reached MaxFlowsPerInterface count as
// folded; those removed because the interface's share of MaxFlowsTotal was
// the tighter limit count as evicted.

// sharedBudget is what the tables of one Aggregator share: the number of
// interfaces the total budget is divided among.
type sharedBudget struct {
	ifaces atomic.Int64
}

// limits returns the table's flow cap: min(MaxFlowsPerInterface,
// max(1, MaxFlowsTotal / interfaces)) split evenly among the interface's
// shards, at least 1 each; byTotal says the total budget's share is the
// tighter limit (removals count as evicted).
func (t *IfaceTable) limits() (limit int, byTotal bool) {
	per := t.cfg.MaxFlowsPerInterface
	if t.budget != nil {
		if n := t.budget.ifaces.Load(); n > 0 {
			if share := max(1, t.cfg.MaxFlowsTotal/int(n)); share < per {
				per, byTotal = share, true
			}
		}
	}
	return max(1, per/int(max(1, t.shards.Load()))), byTotal
}

// makeRoom folds the smallest quarter of a full table.
func (t *IfaceTable) makeRoom(limit int) {
	target := limit - max(1, limit/4)
	_, byTotal := t.limits()
	t.compact(target, byTotal)
}

// compact folds the smallest flows into the overflow counters until at most
// target flows remain. evict says which counter the removed flows go to.
func (t *IfaceTable) compact(target int, evict bool) {
	n := len(t.flows)
	if n > max(target, 0) {
		t.finishPending(time.Now().UnixNano()) // flows are about to move
	}
	k := n - max(target, 0) // flows to fold
	if k <= 0 {
		return
	}
	thr := uint64(1<<64 - 1)
	skipEq := 0
	if k < n {
		s := t.scratch[:0]
		for i := range t.flows {
			s = append(s, t.flows[i].Bytes)
		}
		t.scratch = s
		thr = quickselect(s, k-1, uint64(n)^uint64(t.total.Packets))
		lt, eq := 0, 0
		for i := range t.flows {
			switch b := t.flows[i].Bytes; {
			case b < thr:
				lt++
			case b == thr:
				eq++
			}
		}
		// Fold all flows below thr and the k-lt oldest of those equal to
		// it. Walking down from the end, the first eq-(k-lt) equal ones
		// (the newest) are kept.
		skipEq = eq - (k - lt)
	}
	for i := n - 1; i >= 0; i-- {
		f := &t.flows[i]
		if f.Bytes > thr {
			continue
		}
		if f.Bytes == thr && skipEq > 0 {
			skipEq--
			continue
		}
		t.overflow[f.Key.Dir&1].AddCounter(Counter{Packets: f.Packets, Bytes: f.Bytes})
		if evict {
			t.evicted++
		} else {
			t.folded++
		}
		t.removeAt(i)
	}
}

// removeAt deletes flow i: the last flow moves into its slot.
func (t *IfaceTable) removeAt(i int) {
	t.index.remove(&t.flows[i].Key, i)
	last := len(t.flows) - 1
	if i != last {
		t.index.move(&t.flows[last].Key, last, i)
		t.flows[i] = t.flows[last]
	}
	t.flows = t.flows[:last]
}

// quickselect reorders s so that s[k] is the value that would be there if s
// were sorted, and returns it. The pivot is chosen pseudo-randomly (seeded by
// the caller) so crafted traffic cannot force the quadratic case.
func quickselect(s []uint64, k int, seed uint64) uint64 {
	lo, hi := 0, len(s)-1
	x := seed | 1
	for lo < hi {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p := s[lo+int(x%uint64(hi-lo+1))]
		// three-way partition: [lo,lt) < p, [lt,gt] == p, (gt,hi] > p
		lt, i, gt := lo, lo, hi
		for i <= gt {
			switch v := s[i]; {
			case v < p:
				s[lt], s[i] = s[i], s[lt]
				lt++
				i++
			case v > p:
				s[gt], s[i] = s[i], s[gt]
				gt--
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt - 1
		case k > gt:
			lo = gt + 1
		default:
			return p
		}
	}
	return s[k]
}
