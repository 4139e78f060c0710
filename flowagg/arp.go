package flowagg

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
)

// ARP tracking: every Ethernet/IPv4 ARP packet (request, reply, gratuitous)
// claims "sender IP is at sender MAC". The tracker keeps the (IP, MAC)
// bindings seen per interface and counts a conflict when an IP is claimed by
// a MAC other than the one that claimed it last, less than ArpConflictWindow
// ago (two hosts answering for one address, or a spoofer). A clean move of
// an address to a new MAC after the window is not a conflict. Probes with
// sender 0.0.0.0 claim nothing. Bindings unseen for IdleTimeout are dropped;
// at most MaxARPBindings are kept (further new bindings are not recorded)
// and conflict counters are kept for at most maxARPConflictIPs addresses.

const maxARPConflictIPs = 1024

// ARPBinding is one IP→MAC claim seen on an interface.
type ARPBinding struct {
	IP   netip.Addr
	MAC  net.HardwareAddr
	Last int64 // unix ns of the last claim
}

// ARPConflict is the number of conflicting claims for one IP.
type ARPConflict struct {
	IP        netip.Addr
	Conflicts uint64
}

type arpPair struct {
	ip  [4]byte
	mac [6]byte
}

type arpClaim struct {
	mac  [6]byte
	seen int64
}

type arpTracker struct {
	window    int64
	max       int
	pairs     map[arpPair]int64 // last seen
	latest    map[[4]byte]arpClaim
	conflicts map[[4]byte]uint64
	ttl       int64
}

func newARPTracker(cfg Config) arpTracker {
	return arpTracker{
		window:    int64(cfg.ArpConflictWindow),
		max:       cfg.MaxARPBindings,
		ttl:       int64(cfg.IdleTimeout),
		pairs:     make(map[arpPair]int64),
		latest:    make(map[[4]byte]arpClaim),
		conflicts: make(map[[4]byte]uint64),
	}
}

// observe records that ip is at mac at time now.
func (a *arpTracker) observe(ip [4]byte, mac [6]byte, now int64) {
	if ip == [4]byte{} {
		return // ARP probe (RFC 5227): claims nothing
	}
	if prev, ok := a.latest[ip]; ok && prev.mac != mac && now-prev.seen <= a.window {
		if _, ok := a.conflicts[ip]; ok || len(a.conflicts) < maxARPConflictIPs {
			a.conflicts[ip]++
		}
	}
	p := arpPair{ip: ip, mac: mac}
	if _, ok := a.pairs[p]; !ok && len(a.pairs) >= a.max {
		return
	}
	a.pairs[p] = now
	a.latest[ip] = arpClaim{mac: mac, seen: now}
}

// expire drops bindings not claimed for ttl.
func (a *arpTracker) expire(now int64) {
	if a.ttl <= 0 {
		return
	}
	cutoff := now - a.ttl
	for p, seen := range a.pairs {
		if seen < cutoff {
			delete(a.pairs, p)
		}
	}
	for ip, c := range a.latest {
		if c.seen < cutoff {
			delete(a.latest, ip)
		}
	}
}

// rebuild gives back map memory after a flood of bindings.
func (a *arpTracker) rebuild() {
	a.pairs = cloneMap(a.pairs)
	a.latest = cloneMap(a.latest)
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// snapshot returns the bindings and conflicts sorted by IP, then MAC.
func (a *arpTracker) snapshot() ([]ARPBinding, []ARPConflict) {
	bs := make([]ARPBinding, 0, len(a.pairs))
	for p, seen := range a.pairs {
		bs = append(bs, ARPBinding{IP: netip.AddrFrom4(p.ip), MAC: slices.Clone(p.mac[:]), Last: seen})
	}
	slices.SortFunc(bs, func(x, y ARPBinding) int {
		if c := x.IP.Compare(y.IP); c != 0 {
			return c
		}
		return bytes.Compare(x.MAC, y.MAC)
	})
	cs := make([]ARPConflict, 0, len(a.conflicts))
	for ip, n := range a.conflicts {
		cs = append(cs, ARPConflict{IP: netip.AddrFrom4(ip), Conflicts: n})
	}
	slices.SortFunc(cs, func(x, y ARPConflict) int { return x.IP.Compare(y.IP) })
	return bs, cs
}
