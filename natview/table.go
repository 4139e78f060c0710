//go:build linux

package natview

import (
	"github.com/ti-mo/conntrack"
)

// connKey identifies a conntrack entry: the kernel's id plus the original
// tuple, so a reused id or tuple is another connection. Addresses are
// 16-byte arrays (IPv4 mapped), 44 bytes a key where netip.Addr would make
// it 64: the table holds one per live NAT'd connection.
type connKey struct {
	src, dst     [16]byte
	id           uint32
	sport, dport uint16 // for ICMP: the id, and type<<8|code
	proto        uint8
}

func keyOf(f *conntrack.Flow) connKey {
	o := &f.TupleOrig
	k := connKey{id: f.ID, proto: o.Proto.Protocol, src: o.IP.SourceAddress.As16(), dst: o.IP.DestinationAddress.As16()}
	if o.Proto.ICMPv4 || o.Proto.ICMPv6 {
		k.sport, k.dport = o.Proto.ICMPID, uint16(o.Proto.ICMPType)<<8|uint16(o.Proto.ICMPCode)
	} else {
		k.sport, k.dport = o.Proto.SourcePort, o.Proto.DestinationPort
	}
	return k
}

// isNAT reports whether a flow had its source or destination translated:
// only those can be north-south traffic of a container.
func isNAT(f *conntrack.Flow) bool { return f.Status.SrcNAT() || f.Status.DstNAT() }

// conn is a live NAT'd connection and what of its counters is counted
// (56 bytes: what attribution read of it is kept only while it is
// unattributed, in table.pending).
type conn struct {
	orig, reply Counters // counted so far
	agg         *peerAgg // nil while no container owns it
	gen         uint64   // last dump that listed it
	fromDump    bool     // first seen in a dump other than the very first
	sawEvent    bool     // an event named it
}

// tomb remembers a connection a dump did not list, so its DESTROY, still
// queued, adds only what it carried since the last reading.
type tomb struct {
	orig, reply Counters
	agg         *peerAgg
	gen         uint64
	vanished    bool // its DESTROY not seen yet
}

// maxDestroyed bounds the set of connections DESTROYed since the last dump.
// The set only guards the next dump against listing a connection the kernel
// was removing while the dump ran, so in an event storm the oldest entries
// (long out of every hash) can go.
const maxDestroyed = 1 << 16

// table is the accounting state. It is not safe for concurrent use: the
// Watcher's goroutine owns it and scrapes read snapshots under its lock.
type table struct {
	budget     int
	ix         *index
	conns      map[connKey]*conn
	pending    map[connKey]*connInfo // live connections no container owns yet
	tombs      map[connKey]*tomb     // removed by a dump, their DESTROY maybe still queued
	destroyed  map[connKey]struct{}  // DESTROYed since the last dump
	containers map[string]*ctrAgg
	gen        uint64 // dumps applied
	firstGen   uint64 // the watcher's very first dump (nothing before it was watched)
	health     Health
}

func newTable(budget int) *table {
	if budget < 1 {
		budget = 1
	}
	return &table{
		budget:     budget,
		conns:      map[connKey]*conn{},
		pending:    map[connKey]*connInfo{},
		tombs:      map[connKey]*tomb{},
		destroyed:  map[connKey]struct{}{},
		containers: map[string]*ctrAgg{},
	}
}

// setEndpoints installs new attribution input and attributes the
// connections no container owned so far.
func (t *table) setEndpoints(e Endpoints) {
	t.ix = newIndex(e)
	for k, info := range t.pending {
		if c := t.conns[k]; c == nil || t.attribute(c, info) {
			delete(t.pending, k)
		}
	}
}

// Event kinds applied by [table.event].
const (
	evNew = iota
	evUpdate
	evDestroy
)

// event applies one conntrack event.
func (t *table) event(kind int, f *conntrack.Flow) {
	t.health.Events[kind]++
	k := keyOf(f)
	if c, ok := t.conns[k]; ok {
		c.sawEvent = true
		t.advance(c, f)
		if kind == evDestroy {
			t.remove(k, c, false)
		}
		return
	}
	if _, ok := t.destroyed[k]; ok {
		return // a late event of a connection already closed
	}
	if tb, ok := t.tombs[k]; ok {
		// A dump removed it. Only its DESTROY adds anything: the counters
		// since that dump's last reading.
		if kind == evDestroy && tb.vanished {
			o, r := delta(&tb.orig, f.CountersOrig), delta(&tb.reply, f.CountersReply)
			if tb.agg != nil {
				tb.agg.resolve().add(o, r)
			}
			tb.vanished = false
		}
		return
	}
	if !isNAT(f) {
		return
	}
	c := t.create(k, f)
	c.sawEvent = true
	if kind == evDestroy {
		t.remove(k, c, false)
	}
}

// beginDump starts a dump generation: tombs older than the previous dump
// are forgotten (every event queued before that dump has been applied), and
// connections a dump found that no event ever named count as lost events.
// initial is the watcher's first dump: what it finds was there before nta
// listened, not lost. A re-dump after a receive error is not initial: what
// it finds and no event names came in the gap.
func (t *table) beginDump(initial bool) {
	t.gen++
	if initial {
		t.firstGen = t.gen
	}
	for k, tb := range t.tombs {
		if tb.gen+1 < t.gen {
			if tb.vanished {
				t.health.EventsLost++ // its DESTROY never came
			}
			delete(t.tombs, k)
		}
	}
	for _, c := range t.conns {
		if c.fromDump && c.gen+1 == t.gen {
			if !c.sawEvent {
				t.health.EventsLost++ // its NEW never came
			}
			c.fromDump = false
		}
	}
}

// dumped applies one flow of the dump begun with beginDump.
func (t *table) dumped(f *conntrack.Flow) {
	k := keyOf(f)
	if c, ok := t.conns[k]; ok {
		t.advance(c, f)
		c.gen = t.gen
		return
	}
	if _, ok := t.tombs[k]; ok || !isNAT(f) {
		return
	}
	if _, ok := t.destroyed[k]; ok {
		return
	}
	c := t.create(k, f)
	c.gen = t.gen
	c.fromDump = t.gen != t.firstGen
}

// endDump removes the connections the dump did not list: they ended while
// their DESTROY was lost or is still queued (the tomb catches it).
func (t *table) endDump() {
	for k, c := range t.conns {
		if c.gen != t.gen {
			t.remove(k, c, true)
		}
	}
	clear(t.destroyed)
	for id, ca := range t.containers {
		if _, known := t.ix.knows(id); !known && ca.open() == 0 {
			delete(t.containers, id)
		}
	}
	t.health.Dumps++
}

// create adds a connection from its first reading and counts it.
func (t *table) create(k connKey, f *conntrack.Flow) *conn {
	c := &conn{orig: counters(f.CountersOrig), reply: counters(f.CountersReply)}
	t.conns[k] = c
	if info := infoOf(f); !t.attribute(c, &info) {
		keep := info // only an unattributed connection's info goes to the heap
		t.pending[k] = &keep
	}
	return c
}

// attribute gives c to its series when a container owns it, counting the
// connection and everything it carried so far; false when none does.
func (t *table) attribute(c *conn, info *connInfo) bool {
	g, ct, peer, ok := t.ix.attribute(info)
	if !ok {
		return false
	}
	p := t.peer(g, ct, peer)
	p.opened++
	p.openNow++
	p.add(c.orig, c.reply)
	c.agg = p
	return true
}

// advance counts what a connection carried since its last reading.
func (t *table) advance(c *conn, f *conntrack.Flow) {
	o, r := delta(&c.orig, f.CountersOrig), delta(&c.reply, f.CountersReply)
	if c.agg != nil {
		c.agg.resolve().add(o, r)
	}
}

// remove takes a connection out of the table: one a dump did not list
// leaves a tomb with its counters, a DESTROYed one its key until the next
// dump.
func (t *table) remove(k connKey, c *conn, vanished bool) {
	delete(t.conns, k)
	delete(t.pending, k)
	if c.agg != nil {
		c.agg.resolve().openNow--
	}
	if vanished {
		t.tombs[k] = &tomb{orig: c.orig, reply: c.reply, agg: c.agg, gen: t.gen, vanished: true}
		return
	}
	if len(t.destroyed) >= maxDestroyed {
		clear(t.destroyed)
	}
	t.destroyed[k] = struct{}{}
}

func counters(c conntrack.Counter) Counters { return Counters{Bytes: c.Bytes, Packets: c.Packets} }

// delta returns how much now exceeds what was counted and moves counted up
// to it; kernel counters only grow, so a lower reading is an old one.
func delta(counted *Counters, now conntrack.Counter) Counters {
	var d Counters
	if now.Bytes > counted.Bytes {
		d.Bytes = now.Bytes - counted.Bytes
		counted.Bytes = now.Bytes
	}
	if now.Packets > counted.Packets {
		d.Packets = now.Packets - counted.Packets
		counted.Packets = now.Packets
	}
	return d
}
