//go:build linux

package natview

import (
	"net/netip"

	"github.com/ti-mo/conntrack"
)

// connInfo is what attribution reads of a flow: kept per connection so an
// unattributed one can be tried again when the endpoints change.
type connInfo struct {
	proto      uint8
	dnat, snat bool
	origSrc    netip.Addr
	origDst    netip.Addr
	origDport  uint16
	replySrc   netip.Addr
	replySport uint16
}

func infoOf(f *conntrack.Flow) connInfo {
	o, r := &f.TupleOrig, &f.TupleReply
	return connInfo{
		proto:      o.Proto.Protocol,
		dnat:       f.Status.DstNAT(),
		snat:       f.Status.SrcNAT(),
		origSrc:    o.IP.SourceAddress.Unmap(),
		origDst:    o.IP.DestinationAddress.Unmap(),
		origDport:  o.Proto.DestinationPort,
		replySrc:   r.IP.SourceAddress.Unmap(),
		replySport: r.Proto.SourcePort,
	}
}

// groupKey is a series of a container without its peer: no strings, so
// finding a connection's series hashes a few bytes, not a container id.
type groupKey struct {
	hostIP   netip.Addr // published binding; invalid for egress and for a binding without address
	hostPort uint16
	proto    uint8
	egress   bool
}

func (g groupKey) direction() string {
	if g.egress {
		return Egress
	}
	return Ingress
}

// peerLabel formats a peer: the client address (ingress), the destination
// address:port (egress), the address alone for ICMP.
func (g groupKey) peerLabel(peer netip.AddrPort) string {
	if !g.egress || g.proto == protoICMP || g.proto == protoICMPv6 {
		return peer.Addr().String()
	}
	return peer.String()
}

type portKey struct {
	proto    uint8
	hostPort uint16
}

// index is Endpoints arranged for lookups; built when the endpoints change,
// read for each new connection.
type index struct {
	containers map[netip.Addr]Container
	ports      map[portKey][]Port
	hostAddrs  map[netip.Addr]bool
	byID       map[string]Container
}

func newIndex(e Endpoints) *index {
	ix := &index{
		containers: make(map[netip.Addr]Container, len(e.Containers)),
		ports:      map[portKey][]Port{},
		hostAddrs:  e.HostAddrs,
		byID:       map[string]Container{},
	}
	for a, c := range e.Containers {
		ix.containers[a.Unmap()] = c
		ix.byID[c.ID] = c
	}
	for _, p := range e.Ports {
		k := portKey{p.Proto, p.HostPort}
		p.HostIP = p.HostIP.Unmap()
		ix.ports[k] = append(ix.ports[k], p)
		ix.byID[p.Container.ID] = p.Container
	}
	return ix
}

// attribute returns the series a connection belongs to, or ok false when
// it is no container's north-south traffic.
func (ix *index) attribute(c *connInfo) (g groupKey, ct Container, peer netip.AddrPort, ok bool) {
	if ix == nil {
		return g, ct, peer, false
	}
	if c.dnat {
		ct, found := ix.containers[c.replySrc]
		if found && (ix.hostAddrs == nil || ix.hostAddrs[c.origDst]) {
			for _, p := range ix.ports[portKey{c.proto, c.origDport}] {
				if p.Container.ID != ct.ID || p.ContainerPort != c.replySport || !hostIPMatches(p.HostIP, c.origDst) {
					continue
				}
				g = groupKey{proto: c.proto, hostIP: p.HostIP, hostPort: p.HostPort}
				return g, ct, netip.AddrPortFrom(c.origSrc, 0), true
			}
		}
	}
	if c.snat {
		if ct, found := ix.containers[c.origSrc]; found {
			g = groupKey{egress: true, proto: c.proto}
			port := c.origDport
			if c.proto == protoICMP || c.proto == protoICMPv6 {
				port = 0
			}
			return g, ct, netip.AddrPortFrom(c.origDst, port), true
		}
	}
	return g, ct, peer, false
}

// hostIPMatches reports whether a published binding's host address accepts
// a connection to dst: the same address, or the unspecified address of
// dst's family, or no address at all.
func hostIPMatches(bind, dst netip.Addr) bool {
	if !bind.IsValid() {
		return true
	}
	if bind.IsUnspecified() {
		return bind.Is4() == dst.Is4()
	}
	return bind == dst
}

func hostIPLabel(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// knows reports whether a container id is among the endpoints.
func (ix *index) knows(id string) (Container, bool) {
	if ix == nil {
		return Container{}, false
	}
	c, ok := ix.byID[id]
	return c, ok
}
