package flowagg

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// Counter is a pair of packet and byte counts. Bytes are wire lengths.
type Counter struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

func (c *Counter) add(bytes uint64) {
	c.Packets++
	c.Bytes += bytes
}

// AddCounter adds o's packets and bytes to c.
func (c *Counter) AddCounter(o Counter) {
	c.Packets += o.Packets
	c.Bytes += o.Bytes
}

// Flow is one entry of a flow table: its key, counters and the unix
// nanosecond timestamps of its first and last packet.
type Flow struct {
	Key     decoder.FlowKey
	Bytes   uint64
	Packets uint64
	First   int64
	Last    int64
}

// maxEtherTypes caps the distinct EtherTypes counted per interface; the rest
// are counted under the label "other" (random garbage must not create 65536
// series).
const maxEtherTypes = 64

// IfaceTable is the flow table of one interface. Add, Publish and
// PublishSnapshot must be called from one goroutine (the interface's capture
// loop): the hot path takes no lock. Scrapes go through requestSnapshot and
// Published, which are safe from any goroutine.
type IfaceTable struct {
	name  string
	shard int
	cfg   Config

	// budget is shared by every table of the Aggregator (nil for a table
	// of its own); shards is the number of tables of this interface,
	// written by the Aggregator. The flow cap is computed from them when a
	// flow is inserted (limits), so adding an interface is O(1), not a
	// pass over every table.
	budget *sharedBudget
	shards atomic.Int64

	dec     decoder.Decoder
	index   flowIndex
	flows   []Flow
	scratch []uint64 // compaction work space, reused
	peak    int      // most flows since the last rebuild

	total    Counter    // every frame handed to Add
	overflow [2]Counter // folded and evicted flows, by direction
	expired  Counter    // traffic of flows removed by idle expiry
	nonIP    Counter    // frames counted by EtherType (ARP included)
	errs     Counter    // frames that failed to decode
	folded   uint64     // flows folded by MaxFlowsPerInterface
	evicted  uint64     // flows evicted by the MaxFlowsTotal share
	expiries uint64     // flows removed by idle expiry
	reasons  [decoder.NumReasons]uint64
	etypes   map[uint16]uint64
	etOther  uint64
	arp      arpTracker

	lastMaint int64
	idleMark  uint64 // t.total.Packets at the last Publish
	pending   *pendingSnapshot

	// snapshot hand-over (snapshot.go)
	reqGen    atomic.Uint64
	servedGen uint64
	snap      atomic.Pointer[TableSnapshot]
	flowsHint atomic.Int64 // len(flows) at the last Publish, for scrapers
	mu        sync.Mutex   // guards waitCh and offered; held for nanoseconds
	waitCh    chan struct{}
	offered   []Flow                 // snapshot buffer allocated by a scraper
	waker     atomic.Pointer[func()] // wakes the owner loop on a request (SetWaker)
}

func newIfaceTable(name string, shard int, cfg Config, budget *sharedBudget) *IfaceTable {
	t := &IfaceTable{
		name:   name,
		shard:  shard,
		cfg:    cfg,
		index:  newFlowIndex(0),
		etypes: make(map[uint16]uint64, maxEtherTypes),
		arp:    newARPTracker(cfg),
		budget: budget,
	}
	t.shards.Store(1)
	return t
}

// Name returns the interface name.
func (t *IfaceTable) Name() string { return t.name }

// Shard returns the fanout shard of the table (0 without fanout).
func (t *IfaceTable) Shard() int { return t.shard }

// Add decodes an Ethernet frame and counts it. wireLen is the frame length on
// the wire (AF_PACKET tp_len); when it is smaller than len(frame),
// len(frame) is used. dir says whether the frame was received or sent. It
// is the hot path: no allocation, no lock; call it only from the goroutine
// that owns the table.
func (t *IfaceTable) Add(frame []byte, wireLen int, dir decoder.Direction, ts time.Time) {
	t.AddFrame(decoder.LinkEthernet, frame, wireLen, dir, ts.UnixNano())
}

// AddFrame is Add for any link type (pcap files: Linux cooked, raw IP), with
// the timestamp in unix nanoseconds. The same rules apply: owner goroutine
// only, no allocation.
func (t *IfaceTable) AddFrame(link decoder.LinkType, frame []byte, wireLen int, dir decoder.Direction, now int64) {
	n := uint64(max(wireLen, len(frame)))
	t.total.add(n)
	var r decoder.Result
	switch t.dec.Decode(link, frame, now, &r) {
	case decoder.KindFlow:
		if r.Outgoing {
			dir = decoder.DirOut
		}
		r.Key.Dir = dir
		t.cfg.Granularity.apply(&r.Key)
		t.addFlow(&r.Key, n, now)
	case decoder.KindARP:
		t.arp.observe(r.ARPIP, r.ARPMAC, now)
		t.countEtherType(r.EtherType, n)
	case decoder.KindOther:
		t.countEtherType(r.EtherType, n)
	default:
		t.errs.add(n)
		t.reasons[r.Reason]++
	}
}

// AddUndecodable counts a frame the caller could not hand to the decoder (a
// pcap link type it does not know) as a decode error with the given reason.
// Owner goroutine only.
func (t *IfaceTable) AddUndecodable(wireLen int, reason decoder.Reason) {
	n := uint64(wireLen)
	t.total.add(n)
	t.errs.add(n)
	t.reasons[reason]++
}

func (t *IfaceTable) countEtherType(et uint16, n uint64) {
	t.nonIP.add(n)
	if c, ok := t.etypes[et]; ok {
		t.etypes[et] = c + 1
		return
	}
	if len(t.etypes) < maxEtherTypes {
		t.etypes[et] = 1
		return
	}
	t.etOther++
}

// addFlow counts a packet of n bytes to its flow, inserting the flow (and
// making room within the budget) when it is new.
func (t *IfaceTable) addFlow(k *decoder.FlowKey, n uint64, now int64) {
	h := t.index.hash(k)
	slot, i := t.index.find(k, h, t.flows)
	if i >= 0 {
		f := &t.flows[i]
		f.Bytes += n
		f.Packets++
		if now > f.Last {
			f.Last = now
		}
		return
	}
	limit, _ := t.limits()
	if len(t.flows) >= limit {
		t.makeRoom(limit)
		slot, _ = t.index.find(k, h, t.flows) // slots moved
	}
	if len(t.flows) >= limit {
		// Only reachable with a limit below 1, which the Aggregator never
		// sets; keep the sums exact anyway.
		t.overflow[k.Dir&1].add(n)
		t.folded++
		return
	}
	t.index.insertAt(slot, h, len(t.flows))
	t.flows = append(t.flows, Flow{Key: *k, Bytes: n, Packets: 1, First: now, Last: now})
	if len(t.flows) > t.peak {
		t.peak = len(t.flows)
	}
}

// Len returns the number of flows in the table (owner goroutine only).
func (t *IfaceTable) Len() int { return len(t.flows) }

// Totals returns every frame handed to Add (owner goroutine only).
func (t *IfaceTable) Totals() Counter { return t.total }
