package flowagg

import "time"

// Maintenance runs in the owner goroutine from Publish: idle expiry, the
// budget share after interfaces came or went, and the rebuild that returns
// memory after a flood. The index and the flow slice never shrink by
// themselves (nor would a Go map: deleting keys leaves the buckets
// allocated), so when a table has fallen to a quarter of its peak it
// is copied into a map and slice sized for what is left.

const (
	minMaintEvery = 100 * time.Millisecond
	maxMaintEvery = 10 * time.Second
	// rebuildMinPeak: below this many flows a table is small enough that
	// rebuilding is not worth it.
	rebuildMinPeak = 1024
)

func (t *IfaceTable) maintEvery() int64 {
	if t.cfg.IdleTimeout <= 0 {
		return int64(maxMaintEvery)
	}
	return int64(min(max(t.cfg.IdleTimeout/4, minMaintEvery), maxMaintEvery))
}

// Maintain runs the periodic work (idle expiry, budget, memory) if it is
// due at now (unix ns): for offline use, where time is the capture's and
// nothing calls Publish. Owner goroutine only.
func (t *IfaceTable) Maintain(now int64) { t.maintain(now, false) }

// maintain runs the periodic work if it is due at now (unix ns).
func (t *IfaceTable) maintain(now int64, force bool) {
	if t.pending != nil {
		return // a snapshot copy is in progress: flows must not move
	}
	if !force && now-t.lastMaint < t.maintEvery() && now >= t.lastMaint {
		return
	}
	t.lastMaint = now
	if t.cfg.IdleTimeout > 0 {
		t.expire(now - int64(t.cfg.IdleTimeout))
		t.arp.expire(now)
	}
	if limit, byTotal := t.limits(); len(t.flows) > limit {
		t.compact(limit-limit/4, byTotal)
	}
	t.maybeRebuild()
}

// expire removes the flows whose last packet is older than cutoff.
func (t *IfaceTable) expire(cutoff int64) {
	for i := len(t.flows) - 1; i >= 0; i-- {
		f := &t.flows[i]
		if f.Last >= cutoff {
			continue
		}
		t.expired.AddCounter(Counter{Packets: f.Packets, Bytes: f.Bytes})
		t.expiries++
		t.removeAt(i)
	}
}

// maybeRebuild reallocates the map and slice when the table shrank to a
// quarter of its peak, so the memory of a past flood is returned to the GC.
func (t *IfaceTable) maybeRebuild() {
	n := len(t.flows)
	if t.peak < rebuildMinPeak || n*4 > t.peak {
		return
	}
	t.rebuild()
}

func (t *IfaceTable) rebuild() {
	n := len(t.flows)
	flows := make([]Flow, n, n+n/4)
	copy(flows, t.flows)
	t.index.resize(n)
	t.flows, t.scratch, t.peak = flows, nil, n
	t.arp.rebuild()
}
