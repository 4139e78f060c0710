//go:build linux

package natview

import (
	"cmp"
	"net/netip"
	"slices"
)

// peerAgg is one series: the counters of a group's connections with one peer.
type peerAgg struct {
	group    groupKey
	peer     netip.AddrPort // zero in an overflow series
	overflow bool
	opened   uint64
	openNow  int64
	rx, tx   Counters
	foldedTo *peerAgg // set when the budget folded this peer into the overflow series
}

// resolve returns the series that counts for p now: p itself, or the
// overflow series it was folded into.
func (p *peerAgg) resolve() *peerAgg {
	for p.foldedTo != nil {
		p = p.foldedTo
	}
	return p
}

// add counts orig and reply direction counters from the container's point
// of view: an ingress connection's original direction is what the
// container received, an egress one's is what it sent.
func (p *peerAgg) add(orig, reply Counters) {
	in, out := orig, reply
	if p.group.egress {
		in, out = reply, orig
	}
	p.rx.add(in)
	p.tx.add(out)
}

func (p *peerAgg) size() uint64 { return p.rx.Bytes + p.tx.Bytes }

// merge adds everything of q to p.
func (p *peerAgg) merge(q *peerAgg) {
	p.opened += q.opened
	p.openNow += q.openNow
	p.rx.add(q.rx)
	p.tx.add(q.tx)
}

type peerKey struct {
	group groupKey
	peer  netip.AddrPort
}

// ctrAgg holds a container's series under its peer budget.
type ctrAgg struct {
	ct       Container
	peers    map[peerKey]*peerAgg
	overflow map[groupKey]*peerAgg
}

func (ca *ctrAgg) open() int64 {
	var n int64
	for _, p := range ca.peers {
		n += p.openNow
	}
	for _, p := range ca.overflow {
		n += p.openNow
	}
	return n
}

// peer returns the series of a container's group and peer, folding the
// smallest quarter of the container's peers into their groups' overflow
// series when a new peer finds the budget full (as the flow table does):
// sums stay exact and series stay bounded.
func (t *table) peer(g groupKey, ct Container, peer netip.AddrPort) *peerAgg {
	ca := t.containers[ct.ID]
	if ca == nil {
		ca = &ctrAgg{ct: ct, peers: map[peerKey]*peerAgg{}, overflow: map[groupKey]*peerAgg{}}
		t.containers[ct.ID] = ca
	}
	ca.ct = ct
	k := peerKey{g, peer}
	if p := ca.peers[k]; p != nil {
		return p
	}
	if len(ca.peers) >= t.budget {
		t.fold(ca)
	}
	p := &peerAgg{group: g, peer: peer}
	ca.peers[k] = p
	return p
}

func (t *table) fold(ca *ctrAgg) {
	all := make([]*peerAgg, 0, len(ca.peers))
	for _, p := range ca.peers {
		all = append(all, p)
	}
	slices.SortFunc(all, func(a, b *peerAgg) int {
		if c := cmp.Compare(a.size(), b.size()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.opened, b.opened); c != 0 {
			return c
		}
		return a.peer.Compare(b.peer)
	})
	n := max(1, len(all)/4)
	for _, p := range all[:n] {
		o := ca.overflow[p.group]
		if o == nil {
			o = &peerAgg{group: p.group, overflow: true}
			ca.overflow[p.group] = o
		}
		o.merge(p)
		p.foldedTo = o
		delete(ca.peers, peerKey{p.group, p.peer})
	}
	t.health.FoldedPeers += uint64(n)
}

// snapshot copies the series and health for a scrape.
func (t *table) snapshot() Snapshot {
	var out []Series
	for _, ca := range t.containers {
		for _, p := range ca.peers {
			out = append(out, seriesOf(ca.ct, p))
		}
		for _, p := range ca.overflow {
			out = append(out, seriesOf(ca.ct, p))
		}
	}
	slices.SortFunc(out, func(a, b Series) int {
		return cmp.Or(cmp.Compare(a.Container.Name, b.Container.Name), cmp.Compare(a.Container.ID, b.Container.ID),
			cmp.Compare(a.Direction, b.Direction), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.HostIP, b.HostIP),
			cmp.Compare(a.HostPort, b.HostPort), cmp.Compare(a.Peer, b.Peer))
	})
	var ports []Series
	for _, x := range out {
		if x.Direction != Ingress {
			continue
		}
		if n := len(ports); n > 0 && ports[n-1].Container == x.Container && ports[n-1].Proto == x.Proto &&
			ports[n-1].HostIP == x.HostIP && ports[n-1].HostPort == x.HostPort {
			ports[n-1].add(x)
			continue
		}
		x.Peer = ""
		ports = append(ports, x)
	}
	h := t.health
	h.PeerBudget = t.budget
	h.Tracked = len(t.conns)
	h.Unattributed = len(t.pending)
	return Snapshot{Series: out, Ports: ports, Health: h}
}

func seriesOf(ct Container, p *peerAgg) Series {
	peer := OverflowPeer
	if !p.overflow {
		peer = p.group.peerLabel(p.peer)
	}
	return Series{
		Container: ct, Direction: p.group.direction(), Proto: ProtoName(p.group.proto),
		HostIP: hostIPLabel(p.group.hostIP), HostPort: p.group.hostPort, Peer: peer,
		Opened: p.opened, Open: p.openNow, Received: p.rx, Transmitted: p.tx,
	}
}

// add sums another series of the same group into s.
func (s *Series) add(x Series) {
	s.Opened += x.Opened
	s.Open += x.Open
	s.Received.add(x.Received)
	s.Transmitted.add(x.Transmitted)
}
