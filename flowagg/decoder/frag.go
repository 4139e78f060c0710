package decoder

import "encoding/binary"

// Fragments: only the first fragment of an IP datagram carries the L4
// header. The first fragment stores its ports here under (family, src, dst,
// proto, IP id); later fragments of the same datagram look them up and are
// counted to the same flow. A later fragment that arrives before its first
// fragment, or after the entry was overwritten or aged out, is counted with
// ports 0 (a separate flow with the same addresses and protocol).
//
// The cache is a fixed direct-mapped array: O(1), and a flood of fragments
// can only overwrite entries, never grow memory. It is allocated by the
// first fragment a decoder sees (once, ~30 KiB): a table per interface of
// a pcapng file with 100k interfaces, most without fragments, must not
// cost 3 GB.

const (
	fragSlots  = 512             // power of two
	fragMaxAge = int64(30 * 1e9) // Linux net.ipv4.ipfrag_time default
	fragMask   = uint32(fragSlots - 1)
)

type fragEntry struct {
	src, dst      [16]byte
	id            uint32
	proto, family uint8
	sport, dport  uint16
	seen          int64
}

type fragCache struct {
	slots *[fragSlots]fragEntry // nil until the first store
}

func fragSlot(k *FlowKey, id uint32) uint32 {
	h := id*0x9e3779b1 ^ binary.LittleEndian.Uint32(k.Src[0:4]) ^
		binary.LittleEndian.Uint32(k.Src[12:16])*0x85ebca6b ^
		binary.LittleEndian.Uint32(k.Dst[0:4])*0xc2b2ae35 ^
		binary.LittleEndian.Uint32(k.Dst[12:16]) ^ uint32(k.Proto)<<24
	h ^= h >> 15
	h *= 0x2c1b3c6d
	h ^= h >> 12
	return h & fragMask
}

// store remembers the ports of a first fragment.
func (c *fragCache) store(k *FlowKey, id uint32, now int64) {
	if c.slots == nil {
		c.slots = new([fragSlots]fragEntry)
	}
	e := &c.slots[fragSlot(k, id)]
	*e = fragEntry{src: k.Src, dst: k.Dst, id: id, proto: k.Proto, family: k.Family,
		sport: k.SrcPort, dport: k.DstPort, seen: now}
}

// lookup fills in the ports of a later fragment when its first fragment was
// seen less than fragMaxAge ago; otherwise the ports stay 0.
func (c *fragCache) lookup(k *FlowKey, id uint32, now int64) {
	if c.slots == nil {
		return
	}
	e := &c.slots[fragSlot(k, id)]
	if e.id != id || e.proto != k.Proto || e.family != k.Family ||
		e.src != k.Src || e.dst != k.Dst {
		return
	}
	if age := now - e.seen; age > fragMaxAge || age < -fragMaxAge {
		return
	}
	k.SrcPort, k.DstPort = e.sport, e.dport
}
