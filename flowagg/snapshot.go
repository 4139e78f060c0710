package flowagg

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// Snapshot hand-over between a scrape and the capture goroutine.
//
// The table's data belongs to its capture goroutine; nobody else reads it.
// A scrape increments reqGen (atomic), calls the table's waker (SetWaker:
// the capture loop's ring stops waiting for the kernel, so an idle interface
// answers at once rather than at its next poll timeout) and waits on waitCh.
// The capture loop calls Publish between ring blocks and when woken; Publish
// sees reqGen moved and copies
// the flow slice into a new TableSnapshot (a plain memmove: no map walk, no
// rehash), at most publishSlice (50 µs, ~10k flows) per call while packets
// keep coming (longer for very large tables, see slice), all at once
// when the ring is idle. Nothing moves flows in the
// slice while a copy is in progress: expiry waits, and a compaction (a new
// flow in a full table) first finishes the copy. When the copy is complete
// the snapshot is stored in an atomic pointer and waitCh is closed. The
// only lock (mu) guards the waitCh swap and is held for a few instructions
// by either side. Snapshots are immutable once published and are reclaimed
// by the GC when no scrape holds them.
//
// A snapshot copied over several Publish calls is not one instant: a flow
// copied early misses the packets that arrived until the copy finished,
// which the interface totals (read last) include. The skew is the traffic
// of a few milliseconds; when capture is quiet (or with PublishSnapshot)
// flows + overflow + expired equal the IP total exactly.
//
// When no scrape asked, Publish costs one atomic load and a clock read.
//
// What a snapshot holds is what the kernel has handed over: frames in the
// ring block the kernel is still filling (at most the capture's block
// timeout old) are counted by the snapshot after the block is retired.

// TableSnapshot is an immutable copy of one interface table.
type TableSnapshot struct {
	Interface string
	Shards    int // tables merged into this snapshot (fanout sockets)
	Time      time.Time
	Limit     int        // flow limit in force (share of the budget)
	Flows     []Flow     // in no particular order
	Total     Counter    // every frame handed to the table
	Overflow  [2]Counter // folded and evicted flows, indexed by decoder.Direction
	Expired   Counter    // traffic of flows removed by idle expiry
	NonIP     Counter    // frames counted by EtherType
	Errors    Counter    // frames that failed to decode
	// Folded, Evicted and Expiries count flows removed from the table.
	Folded, Evicted, Expiries uint64
	DecodeErrors              [decoder.NumReasons]uint64 // indexed by Reason
	EtherTypes                []EtherTypeCount
	ARPBindings               []ARPBinding
	ARPConflicts              []ARPConflict
}

// EtherTypeCount is the packet count of one non-IP EtherType. Label is
// "0x88cc" style, "802.3" for length-field frames or "other" past the cap.
type EtherTypeCount struct {
	Label   string
	Packets uint64
}

// FlowSum returns the sum of the flow entries plus overflow and expired
// traffic: it equals the IP traffic handed to the table.
func (s *TableSnapshot) FlowSum() Counter {
	var c Counter
	for i := range s.Flows {
		c.AddCounter(Counter{Packets: s.Flows[i].Packets, Bytes: s.Flows[i].Bytes})
	}
	c.AddCounter(s.Overflow[0])
	c.AddCounter(s.Overflow[1])
	c.AddCounter(s.Expired)
	return c
}

// CheckSums reports whether the snapshot's counters add up: flows, overflow
// and expired traffic plus non-IP and undecodable frames equal every frame
// handed to the table; decode errors by reason and non-IP frames by
// EtherType sum to their totals. A snapshot copied while packets kept coming
// may be off by the traffic of the copy (see above); a quiet one is exact.
func (s *TableSnapshot) CheckSums() error {
	ip := s.FlowSum()
	all := ip
	all.AddCounter(s.NonIP)
	all.AddCounter(s.Errors)
	if all != s.Total {
		return fmt.Errorf("%s: flows %+v + non-IP %+v + errors %+v = %+v, want total %+v", s.Interface, ip, s.NonIP, s.Errors, all, s.Total)
	}
	var reasons uint64
	for _, n := range s.DecodeErrors {
		reasons += n
	}
	if reasons != s.Errors.Packets {
		return fmt.Errorf("%s: decode errors by reason sum to %d, want %d", s.Interface, reasons, s.Errors.Packets)
	}
	var ets uint64
	for _, e := range s.EtherTypes {
		ets += e.Packets
	}
	if ets != s.NonIP.Packets {
		return fmt.Errorf("%s: ethertype counters sum to %d, want %d", s.Interface, ets, s.NonIP.Packets)
	}
	return nil
}

// Publish does the periodic work of the table and answers a pending scrape.
// A capture loop calls it (or PublishPart) between ring blocks, when a
// request wakes it, and at least every 100 ms even when no packet arrives
// (poll timeout). Cheap when nothing is due; a snapshot in progress costs
// at most about publishSlice per call while packets keep arriving.
func (t *IfaceTable) Publish() {
	t.publishAt(time.Now().UnixNano(), false)
}

// PublishSnapshot runs maintenance now and publishes a complete snapshot
// whether or not a scrape asked, and returns it. For tests, offline analysis
// and shutdown: it copies the whole table at once.
func (t *IfaceTable) PublishSnapshot() *TableSnapshot {
	t.publishAt(time.Now().UnixNano(), true)
	return t.snap.Load()
}

const (
	// publishSlice bounds the time one Publish spends copying flows while
	// packets keep arriving.
	publishSlice = 50 * time.Microsecond
	// copyChunk flows (about 37 KB) are copied between clock reads.
	copyChunk = 512
)

// pendingSnapshot is a snapshot being copied across Publish calls.
type pendingSnapshot struct {
	snap    *TableSnapshot
	cursor  int
	gen     uint64
	waiters chan struct{}
	started time.Time
}

// slice is the copy time allowed in this Publish call: publishSlice, or a
// sixteenth of the time the copy has been going on if that is longer (so a
// very large table still finishes when Publish comes only once per ring
// block), and no limit once the copy has taken half of SnapshotWait, so that
// the scrape is answered in time.
func (p *pendingSnapshot) slice(wait time.Duration) time.Duration {
	el := time.Since(p.started)
	if el > wait/2 {
		return 1 << 62
	}
	return max(publishSlice, el/16)
}

// PublishPart is Publish for a capture loop that has no ring block to hand
// over: woken by a snapshot request, at its poll timeout, or between blocks
// while a copy is in progress. It starts or continues the copy for at most
// one slice (see slice), whether or not packets arrived since the last
// Publish, and reports whether a copy is still in progress; the loop calls
// it again unless the kernel has handed it a block in the meantime, so a
// large table is copied in slices with the ring drained in between. Owner
// goroutine only.
func (t *IfaceTable) PublishPart() (copying bool) {
	t.publishStep(time.Now().UnixNano(), false, false)
	return t.pending != nil
}

// publishAt is Publish at now; force copies and publishes everything at
// once. With no packet since the last Publish the ring is idle: the copy
// is done all at once too.
func (t *IfaceTable) publishAt(now int64, force bool) {
	t.publishStep(now, force, t.total.Packets == t.idleMark)
}

// publishStep runs maintenance and answers a pending request; all copies
// the rest of a snapshot in progress regardless of the time slice.
func (t *IfaceTable) publishStep(now int64, force, all bool) {
	if force {
		t.finishPending(now)
	}
	if t.pending == nil {
		t.maintain(now, force) // deferred while a copy is in progress
		gen := t.reqGen.Load()
		if !force && gen == t.servedGen {
			t.idleMark = t.total.Packets
			t.flowsHint.Store(int64(len(t.flows)))
			return
		}
		// Take the waiters before copying, so that everyone woken up gets
		// a copy begun after they asked.
		t.mu.Lock()
		ch, buf := t.waitCh, t.offered
		t.waitCh, t.offered = nil, nil
		t.mu.Unlock()
		if cap(buf) < len(t.flows) {
			buf = make([]Flow, 0, len(t.flows)+len(t.flows)/8)
		}
		t.pending = &pendingSnapshot{gen: gen, waiters: ch, started: time.Now(),
			snap: &TableSnapshot{Interface: t.name, Shards: 1, Flows: buf[:0]}}
	}
	t.idleMark = t.total.Packets
	start := time.Now()
	p := t.pending
	budget := p.slice(t.cfg.SnapshotWait)
	for p.cursor < len(t.flows) {
		end := min(p.cursor+copyChunk, len(t.flows))
		p.snap.Flows = append(p.snap.Flows, t.flows[p.cursor:end]...)
		p.cursor = end
		if !force && !all && p.cursor < len(t.flows) && time.Since(start) > budget {
			return
		}
	}
	t.finishPending(now)
}

// finishPending copies what is left of a snapshot in progress (all of it,
// now) and publishes it. Called before anything moves flows in the slice.
func (t *IfaceTable) finishPending(now int64) {
	p := t.pending
	if p == nil {
		return
	}
	t.pending = nil
	p.snap.Flows = append(p.snap.Flows, t.flows[p.cursor:]...)
	t.fillSnapshot(p.snap, now)
	t.snap.Store(p.snap)
	t.servedGen = p.gen
	if p.waiters != nil {
		close(p.waiters)
	}
}

// requestSnapshot asks the owner for a fresh snapshot and wakes it (see
// SetWaker); the channel is closed when one is published. Safe from any
// goroutine.
//
// The scraper also allocates the buffer the flows will be copied into (sized
// from the flow count of the last Publish), so that the capture goroutine
// does not pay for zeroing or faulting in megabytes of fresh memory.
func (t *IfaceTable) requestSnapshot() <-chan struct{} {
	n := int(t.flowsHint.Load())
	buf := make([]Flow, 0, n+n/8+64)
	clear(buf[:cap(buf)]) // fault the pages in here, not in the capture loop
	t.mu.Lock()
	if t.waitCh == nil {
		t.waitCh = make(chan struct{})
	}
	if cap(buf) > cap(t.offered) {
		t.offered = buf
	}
	ch := t.waitCh
	t.mu.Unlock()
	t.reqGen.Add(1)
	if wake := t.waker.Load(); wake != nil {
		(*wake)() // after reqGen moved: the Publish it causes sees the request
	}
	return ch
}

// SetWaker sets the function a snapshot request calls once it is
// registered, so that the owner goroutine publishes now instead of at its
// next poll timeout (a capture ring sets one that interrupts its wait). wake
// runs on the scraper's goroutine and must not block; nil removes it. Safe
// from any goroutine.
func (t *IfaceTable) SetWaker(wake func()) {
	if wake == nil {
		t.waker.Store(nil)
		return
	}
	t.waker.Store(&wake)
}

// Published returns the latest published snapshot, nil before the first.
// Safe from any goroutine.
func (t *IfaceTable) Published() *TableSnapshot { return t.snap.Load() }

// snapshot copies the whole table at once (owner goroutine only).
// SnapshotAt copies the table now, with now (unix ns) as the snapshot's
// time: for offline use (pcap files) where the owner is the caller and time
// is the capture's. Owner goroutine only.
func (t *IfaceTable) SnapshotAt(now int64) *TableSnapshot { return t.snapshot(now) }

func (t *IfaceTable) snapshot(now int64) *TableSnapshot {
	s := &TableSnapshot{Interface: t.name, Shards: 1, Flows: slices.Clone(t.flows)}
	t.fillSnapshot(s, now)
	return s
}

// fillSnapshot copies everything but the flows into s.
func (t *IfaceTable) fillSnapshot(s *TableSnapshot, now int64) {
	s.Time = time.Unix(0, now)
	s.Limit, _ = t.limits()
	s.Total = t.total
	s.Overflow = t.overflow
	s.Expired = t.expired
	s.NonIP = t.nonIP
	s.Errors = t.errs
	s.Folded, s.Evicted, s.Expiries = t.folded, t.evicted, t.expiries
	s.DecodeErrors = t.reasons
	s.EtherTypes = make([]EtherTypeCount, 0, len(t.etypes)+1)
	for et, c := range t.etypes {
		s.EtherTypes = append(s.EtherTypes, EtherTypeCount{Label: etherTypeLabel(et), Packets: c})
	}
	if t.etOther > 0 {
		s.EtherTypes = append(s.EtherTypes, EtherTypeCount{Label: "other", Packets: t.etOther})
	}
	slices.SortFunc(s.EtherTypes, func(a, b EtherTypeCount) int { return strings.Compare(a.Label, b.Label) })
	s.ARPBindings, s.ARPConflicts = t.arp.snapshot()
}

func etherTypeLabel(et uint16) string {
	if et == decoder.EtherType8023 {
		return "802.3"
	}
	const hex = "0123456789abcdef"
	return string([]byte{'0', 'x', hex[et>>12], hex[et>>8&0xf], hex[et>>4&0xf], hex[et&0xf]})
}
