//go:build linux

package natview

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/ti-mo/conntrack"
)

var (
	web   = Container{ID: "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000", Name: "web"}
	batch = Container{ID: "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000", Name: "batch"}
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// labEndpoints is the lab host: web (172.17.0.2, fd00:17::2) publishes
// 8080->80/tcp on 0.0.0.0 and ::, and 5353->53/udp on 198.18.0.1 only;
// batch (172.17.0.3) publishes nothing.
func labEndpoints() Endpoints {
	return Endpoints{
		Containers: map[netip.Addr]Container{
			addr("172.17.0.2"): web, addr("fd00:17::2"): web, addr("172.17.0.3"): batch,
		},
		Ports: []Port{
			{Container: web, HostIP: addr("0.0.0.0"), HostPort: 8080, ContainerPort: 80, Proto: protoTCP},
			{Container: web, HostIP: addr("::"), HostPort: 8080, ContainerPort: 80, Proto: protoTCP},
			{Container: web, HostIP: addr("198.18.0.1"), HostPort: 5353, ContainerPort: 53, Proto: protoUDP},
		},
		HostAddrs: map[netip.Addr]bool{addr("198.18.0.1"): true, addr("2001:db8::1"): true, addr("172.17.0.1"): true},
	}
}

// flow builds a recorded conntrack entry: the original tuple, the reply
// tuple and the status bits as `conntrack -L` prints them.
func flow(id uint32, proto uint8, status conntrack.Status, osrc string, osport uint16, odst string, odport uint16,
	rsrc string, rsport uint16, rdst string, rdport uint16) conntrack.Flow {
	var f conntrack.Flow
	f.ID = id
	f.Status = status | conntrack.StatusConfirmed | conntrack.StatusSeenReply
	f.TupleOrig.IP = conntrack.IPTuple{SourceAddress: addr(osrc), DestinationAddress: addr(odst)}
	f.TupleOrig.Proto = conntrack.ProtoTuple{Protocol: proto, SourcePort: osport, DestinationPort: odport}
	f.TupleReply.IP = conntrack.IPTuple{SourceAddress: addr(rsrc), DestinationAddress: addr(rdst)}
	f.TupleReply.Proto = conntrack.ProtoTuple{Protocol: proto, SourcePort: rsport, DestinationPort: rdport}
	return f
}

func withCounters(f conntrack.Flow, origBytes, origPkts, replyBytes, replyPkts uint64) *conntrack.Flow {
	f.CountersOrig = conntrack.Counter{Bytes: origBytes, Packets: origPkts}
	f.CountersReply = conntrack.Counter{Bytes: replyBytes, Packets: replyPkts, Direction: true}
	return &f
}

const dnat = conntrack.StatusDstNAT | conntrack.StatusDstNATDone
const snat = conntrack.StatusSrcNAT | conntrack.StatusSrcNATDone

// tcp src=198.18.0.2 dst=198.18.0.1 sport=40000 dport=8080 src=172.17.0.2 dst=198.18.0.2 sport=80 dport=40000 [ASSURED]
func ingressFlow(id uint32, sport uint16) conntrack.Flow {
	return flow(id, protoTCP, dnat, "198.18.0.2", sport, "198.18.0.1", 8080, "172.17.0.2", 80, "198.18.0.2", sport)
}

// tcp src=172.17.0.3 dst=198.18.0.2 sport=50000 dport=9000 src=198.18.0.2 dst=198.18.0.1 sport=9000 dport=50000 [ASSURED]
func egressFlow(id uint32, dst string, dport uint16) conntrack.Flow {
	return flow(id, protoTCP, snat, "172.17.0.3", 50000, dst, dport, dst, dport, "198.18.0.1", 50000)
}

func newLabTable(t *testing.T) *table {
	t.Helper()
	tb := newTable(8)
	tb.setEndpoints(labEndpoints())
	tb.beginDump(true)
	tb.endDump()
	return tb
}

// only returns the one series of a snapshot matching container, direction and peer.
func only(t *testing.T, s Snapshot, ct Container, dir, peer string) Series {
	t.Helper()
	var found []Series
	for _, x := range s.Series {
		if x.Container == ct && x.Direction == dir && x.Peer == peer {
			found = append(found, x)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one series %s/%s/%s, got %d in %+v", ct.Name, dir, peer, len(found), s.Series)
	}
	return found[0]
}

func TestIngressThroughDNATIsTheContainersAtThePublishedPort(t *testing.T) {
	tb := newLabTable(t)
	f := ingressFlow(1, 40000)
	tb.event(evNew, withCounters(f, 60, 1, 0, 0))
	tb.event(evUpdate, withCounters(f, 112, 2, 60, 1))
	s := only(t, tb.snapshot(), web, Ingress, "198.18.0.2")
	if s.Opened != 1 || s.Open != 1 || s.Proto != "tcp" || s.HostIP != "0.0.0.0" || s.HostPort != 8080 {
		t.Fatalf("open connection: %+v", s)
	}
	tb.event(evDestroy, withCounters(f, 1112, 20, 5060, 11))
	s = only(t, tb.snapshot(), web, Ingress, "198.18.0.2")
	// The client's (original) direction is what the container received.
	if s.Opened != 1 || s.Open != 0 || s.Received != (Counters{1112, 20}) || s.Transmitted != (Counters{5060, 11}) {
		t.Fatalf("closed connection: %+v", s)
	}
}

func TestEgressThroughMasqueradeIsTheContainersToItsDestination(t *testing.T) {
	tb := newLabTable(t)
	f := egressFlow(2, "198.18.0.2", 9000)
	tb.event(evNew, withCounters(f, 60, 1, 0, 0))
	tb.event(evDestroy, withCounters(f, 4000, 10, 300, 5))
	s := only(t, tb.snapshot(), batch, Egress, "198.18.0.2:9000")
	if s.Opened != 1 || s.Open != 0 || s.HostPort != 0 || s.HostIP != "" {
		t.Fatalf("egress series: %+v", s)
	}
	// The container originated: original direction is what it sent.
	if s.Transmitted != (Counters{4000, 10}) || s.Received != (Counters{300, 5}) {
		t.Fatalf("egress counters: %+v", s)
	}
}

func TestIPv6IngressMatchesTheUnspecifiedV6Binding(t *testing.T) {
	tb := newLabTable(t)
	// tcp src=2001:db8::2 dst=2001:db8::1 sport=40001 dport=8080 src=fd00:17::2 dst=2001:db8::2 sport=80 dport=40001
	f := flow(3, protoTCP, dnat, "2001:db8::2", 40001, "2001:db8::1", 8080, "fd00:17::2", 80, "2001:db8::2", 40001)
	tb.event(evDestroy, withCounters(f, 500, 5, 700, 6))
	s := only(t, tb.snapshot(), web, Ingress, "2001:db8::2")
	if s.HostIP != "::" || s.Opened != 1 || s.Received.Bytes != 500 {
		t.Fatalf("v6 ingress: %+v", s)
	}
	// Egress IPv6 peers print as [addr]:port.
	g := flow(4, protoTCP, snat, "fd00:17::2", 50000, "2001:db8::9", 443, "2001:db8::9", 443, "2001:db8::1", 50000)
	tb.event(evNew, withCounters(g, 0, 0, 0, 0))
	only(t, tb.snapshot(), web, Egress, "[2001:db8::9]:443")
}

func TestICMPEgressPeerIsTheAddressAlone(t *testing.T) {
	tb := newLabTable(t)
	// icmp src=172.17.0.3 dst=198.18.0.2 type=8 code=0 id=7 src=198.18.0.2 dst=198.18.0.1 type=0 code=0 id=7
	var f conntrack.Flow
	f.ID, f.Status = 5, snat|conntrack.StatusConfirmed
	f.TupleOrig.IP = conntrack.IPTuple{SourceAddress: addr("172.17.0.3"), DestinationAddress: addr("198.18.0.2")}
	f.TupleOrig.Proto = conntrack.ProtoTuple{Protocol: protoICMP, ICMPv4: true, ICMPID: 7, ICMPType: 8}
	f.TupleReply.IP = conntrack.IPTuple{SourceAddress: addr("198.18.0.2"), DestinationAddress: addr("198.18.0.1")}
	f.TupleReply.Proto = conntrack.ProtoTuple{Protocol: protoICMP, ICMPv4: true, ICMPID: 7}
	tb.event(evNew, withCounters(f, 84, 1, 0, 0))
	tb.event(evDestroy, withCounters(f, 336, 4, 336, 4))
	s := only(t, tb.snapshot(), batch, Egress, "198.18.0.2")
	if s.Proto != "icmp" || s.Opened != 1 || s.Transmitted != (Counters{336, 4}) {
		t.Fatalf("icmp: %+v", s)
	}
}

func TestFlowThatChangesBetweenDumpAndEventIsCountedOnce(t *testing.T) {
	tb := newLabTable(t)
	f := ingressFlow(6, 40002)
	tb.beginDump(false)
	tb.dumped(withCounters(f, 100, 2, 200, 2))
	tb.endDump()
	// A stale UPDATE queued before the dump carries lower counters.
	tb.event(evUpdate, withCounters(f, 60, 1, 0, 0))
	tb.event(evDestroy, withCounters(f, 300, 5, 900, 6))
	// A second dump racing with the DESTROY must not bring it back.
	tb.beginDump(false)
	tb.dumped(withCounters(f, 300, 5, 900, 6))
	tb.endDump()
	s := only(t, tb.snapshot(), web, Ingress, "198.18.0.2")
	if s.Opened != 1 || s.Open != 0 || s.Received != (Counters{300, 5}) || s.Transmitted != (Counters{900, 6}) {
		t.Fatalf("%+v", s)
	}
	if h := tb.snapshot().Health; h.Tracked != 0 {
		t.Fatalf("tracked %d after destroy", h.Tracked)
	}
}

func TestRedumpAfterLostEventsDoesNotDoubleCount(t *testing.T) {
	tb := newLabTable(t)
	a, b, d := ingressFlow(10, 41000), ingressFlow(11, 41001), ingressFlow(12, 41002)
	tb.beginDump(false)
	tb.dumped(withCounters(a, 100, 1, 100, 1))
	tb.endDump()
	tb.event(evNew, withCounters(b, 60, 1, 0, 0))
	// Events lost: A's DESTROY, B's updates, all of D's. The re-dump
	// (a new session) lists B and D; A is gone.
	tb.beginDump(false)
	tb.dumped(withCounters(b, 500, 5, 500, 5))
	tb.dumped(withCounters(d, 50, 1, 50, 1))
	tb.endDump()
	s := only(t, tb.snapshot(), web, Ingress, "198.18.0.2")
	if s.Opened != 3 || s.Open != 2 || s.Received.Bytes != 100+500+50 {
		t.Fatalf("after re-dump: %+v", s)
	}
	// A's DESTROY was only queued, not lost: it adds A's last 50 bytes once.
	tb.event(evDestroy, withCounters(a, 150, 2, 100, 1))
	tb.event(evDestroy, withCounters(a, 150, 2, 100, 1)) // a duplicate adds nothing
	tb.event(evDestroy, withCounters(b, 600, 6, 500, 5))
	tb.beginDump(false)
	tb.dumped(withCounters(d, 80, 2, 50, 1))
	tb.endDump()
	s = only(t, tb.snapshot(), web, Ingress, "198.18.0.2")
	if s.Opened != 3 || s.Open != 1 || s.Received != (Counters{150 + 600 + 80, 2 + 6 + 2}) {
		t.Fatalf("after late events: %+v", s)
	}
}

func TestLostEventsAreCountedFromWhatTheDumpMadeUp(t *testing.T) {
	tb := newTable(8)
	tb.setEndpoints(labEndpoints())
	c := ingressFlow(22, 42002)
	tb.beginDump(true) // start: C was there before nta listened, not lost
	tb.dumped(withCounters(c, 0, 0, 0, 0))
	tb.endDump()
	a := ingressFlow(20, 42000)
	tb.event(evNew, withCounters(a, 0, 0, 0, 0))
	// Re-dial after a receive error: A vanished (its DESTROY lost), B
	// appeared (its NEW lost).
	b := ingressFlow(21, 42001)
	for range 3 {
		tb.beginDump(false)
		tb.dumped(withCounters(b, 0, 0, 0, 0))
		tb.dumped(withCounters(c, 0, 0, 0, 0))
		tb.endDump()
	}
	if got := tb.snapshot().Health.EventsLost; got != 2 {
		t.Fatalf("events lost = %d, want 2 (A's DESTROY, B's NEW)", got)
	}
	if s := only(t, tb.snapshot(), web, Ingress, "198.18.0.2"); s.Opened != 3 || s.Open != 2 {
		t.Fatalf("%+v", s)
	}
}

func TestNonNATAndUnknownFlowsAreNotAttributedUntilTheContainerIsKnown(t *testing.T) {
	tb := newTable(8)
	tb.setEndpoints(Endpoints{})
	plain := flow(30, protoTCP, 0, "198.18.0.2", 40000, "198.18.0.1", 22, "198.18.0.1", 22, "198.18.0.2", 40000)
	tb.event(evNew, withCounters(plain, 60, 1, 0, 0))
	f := ingressFlow(31, 43000)
	tb.event(evNew, withCounters(f, 200, 3, 100, 2))
	if s := tb.snapshot(); len(s.Series) != 0 || s.Health.Tracked != 1 || s.Health.Unattributed != 1 {
		t.Fatalf("before the container is known: %+v", s)
	}
	tb.setEndpoints(labEndpoints())
	tb.event(evDestroy, withCounters(f, 250, 4, 100, 2))
	s := only(t, tb.snapshot(), web, Ingress, "198.18.0.2")
	if s.Opened != 1 || s.Received != (Counters{250, 4}) {
		t.Fatalf("after: %+v", s)
	}
}

func TestPublishedPortMustMatchContainerPortAndHostAddress(t *testing.T) {
	tb := newLabTable(t)
	// DNAT'd to web but to another container port (some other rule).
	tb.event(evNew, withCounters(flow(40, protoTCP, dnat, "198.18.0.2", 1, "198.18.0.1", 8080, "172.17.0.2", 81, "198.18.0.2", 1), 0, 0, 0, 0))
	// 5353/udp is published on 198.18.0.1 only.
	tb.event(evNew, withCounters(flow(41, protoUDP, dnat, "172.17.0.3", 2, "172.17.0.1", 5353, "172.17.0.2", 53, "172.17.0.3", 2), 0, 0, 0, 0))
	// Destination not a host address.
	tb.event(evNew, withCounters(flow(42, protoTCP, dnat, "198.18.0.2", 3, "203.0.113.1", 8080, "172.17.0.2", 80, "198.18.0.2", 3), 0, 0, 0, 0))
	if s := tb.snapshot(); len(s.Series) != 0 || s.Health.Unattributed != 3 {
		t.Fatalf("look-alikes attributed: %+v", s)
	}
	tb.event(evNew, withCounters(flow(43, protoUDP, dnat, "198.18.0.2", 4, "198.18.0.1", 5353, "172.17.0.2", 53, "198.18.0.2", 4), 0, 0, 0, 0))
	if s := only(t, tb.snapshot(), web, Ingress, "198.18.0.2"); s.Proto != "udp" || s.HostIP != "198.18.0.1" {
		t.Fatalf("udp binding: %+v", s)
	}
}

func TestBudgetFoldsSmallestPeersAndKeepsSumsExact(t *testing.T) {
	tb := newTable(4)
	tb.setEndpoints(labEndpoints())
	var want Counters
	for i := range 20 {
		dst := fmt.Sprintf("198.18.1.%d", i+1)
		f := egressFlow(uint32(100+i), dst, 443)
		b := uint64(1000 * (i + 1))
		tb.event(evDestroy, withCounters(f, b, 1, 0, 0))
		want.Bytes += b
		want.Packets++
	}
	s := tb.snapshot()
	var got Counters
	var opened uint64
	peers := map[string]bool{}
	for _, x := range s.Series {
		got.Bytes += x.Transmitted.Bytes
		got.Packets += x.Transmitted.Packets
		opened += x.Opened
		peers[x.Peer] = true
	}
	if got != want || opened != 20 {
		t.Fatalf("sums: got %+v/%d want %+v/20", got, opened, want)
	}
	if len(s.Series) > 5 || !peers[OverflowPeer] {
		t.Fatalf("budget 4: %d series %v", len(s.Series), peers)
	}
	if !peers["198.18.1.20:443"] {
		t.Fatalf("the largest peer was folded: %v", peers)
	}
	if s.Health.FoldedPeers == 0 {
		t.Fatal("folded peers not counted")
	}
	if len(s.Ports) != 0 {
		t.Fatalf("egress in per-port totals: %+v", s.Ports)
	}
}

func TestOpenConnectionOfAFoldedPeerClosesOnTheOverflowSeries(t *testing.T) {
	tb := newTable(1)
	tb.setEndpoints(labEndpoints())
	small := egressFlow(200, "198.18.2.1", 80)
	tb.event(evNew, withCounters(small, 10, 1, 0, 0))
	tb.event(evNew, withCounters(egressFlow(201, "198.18.2.2", 80), 5000, 1, 0, 0)) // folds small
	tb.event(evDestroy, withCounters(small, 30, 3, 0, 0))
	o := only(t, tb.snapshot(), batch, Egress, OverflowPeer)
	if o.Opened != 1 || o.Open != 0 || o.Transmitted != (Counters{30, 3}) {
		t.Fatalf("overflow: %+v", o)
	}
}

// An event storm between dumps: memory stays bounded (no tombs grow without
// limit) and every connection is counted exactly once.
func TestEventStormKeepsMemoryBoundedAndCountsExact(t *testing.T) {
	tb := newLabTable(t)
	const n = 3 * maxDestroyed
	for i := range n {
		f := ingressFlow(uint32(1000+i), uint16(i))
		tb.event(evNew, withCounters(f, 60, 1, 0, 0))
		tb.event(evDestroy, withCounters(f, 120, 2, 60, 1))
	}
	if len(tb.destroyed) > maxDestroyed || len(tb.tombs) != 0 || len(tb.conns) != 0 {
		t.Fatalf("destroyed %d tombs %d conns %d", len(tb.destroyed), len(tb.tombs), len(tb.conns))
	}
	s := only(t, tb.snapshot(), web, Ingress, "198.18.0.2")
	if s.Opened != n || s.Received != (Counters{120 * n, 2 * n}) {
		t.Fatalf("%+v", s)
	}
}

// The per-port total of a published port is the sum of its peers and
// overflow, and it never drops when the budget folds a peer.
func TestPortTotalsSumPeersAndStayMonotonicAcrossFolds(t *testing.T) {
	tb := newTable(2)
	tb.setEndpoints(labEndpoints())
	var last uint64
	for i := range 12 {
		src := fmt.Sprintf("198.18.3.%d", i+1)
		f := flow(uint32(300+i), protoTCP, dnat, src, 40000, "198.18.0.1", 8080, "172.17.0.2", 80, src, 40000)
		tb.event(evDestroy, withCounters(f, 100, 1, 0, 0))
		s := tb.snapshot()
		if len(s.Ports) != 1 {
			t.Fatalf("ports: %+v", s.Ports)
		}
		p := s.Ports[0]
		var sum uint64
		for _, x := range s.Series {
			sum += x.Opened
		}
		if p.Opened != sum || p.Opened != uint64(i+1) || p.Opened < last || p.Peer != "" || p.HostPort != 8080 {
			t.Fatalf("after %d connections: port %+v, sum of series %d", i+1, p, sum)
		}
		last = p.Opened
	}
}
