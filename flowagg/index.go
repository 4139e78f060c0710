package flowagg

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"

	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// flowIndex maps a decoder.FlowKey to its position in IfaceTable.flows.
//
// It replaces map[decoder.FlowKey]int32 on the hot path. With a million flows every
// lookup misses the CPU caches; a Go map touches its control word, then the
// slot (another line), then the flow entry. Here a slot is 8 bytes (the low
// 32 bits of the key's hash and the flow position + 1), eight to a cache
// line, so a lookup costs one miss in the index and one in the flow entry:
// about a third faster at 1M flows. Linear probing, load factor at most 1/2,
// deletion by backward shift (no tombstones, so probe lengths do not degrade
// under churn). The stored hash bits also let it grow without rehashing any
// key. The hash is seeded per table from the runtime's random source, so
// crafted 5-tuples cannot aim at collisions.
type flowIndex struct {
	slots []uint64 // 0 = empty; hash32<<32 | (pos+1)
	mask  uint64
	n     int
	seed  [3]uint64
}

const minIndexSlots = 64

func newFlowIndex(flows int) flowIndex {
	x := flowIndex{seed: [3]uint64{rand.Uint64() | 1, rand.Uint64() | 1, rand.Uint64() | 1}}
	x.alloc(flows)
	return x
}

// alloc sizes the slot array for n entries at load <= 1/2 (empty).
func (x *flowIndex) alloc(n int) {
	size := uint64(minIndexSlots)
	for size < uint64(n)*2 {
		size <<= 1
	}
	x.slots = make([]uint64, size)
	x.mask = size - 1
	x.n = 0
}

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash returns a seeded 32-bit hash of the key (wyhash-style folding
// multiplies over its five 64-bit words).
func (x *flowIndex) hash(k *decoder.FlowKey) uint32 {
	w4 := uint64(k.SrcPort) | uint64(k.DstPort)<<16 | uint64(k.Proto)<<32 |
		uint64(k.Dir)<<40 | uint64(k.Family)<<48 | uint64(k.Flags)<<56
	h := mix(le64(k.Src[0:8])^x.seed[0], le64(k.Src[8:16])^0xa0761d6478bd642f)
	h ^= mix(le64(k.Dst[0:8])^x.seed[1], le64(k.Dst[8:16])^0xe7037ed1a0b428db)
	h = mix(h^w4^0x8ebc6af09c88c6e3, x.seed[2])
	return uint32(h) ^ uint32(h>>32)
}

// find returns the position of k in flows, or -1 and the empty slot where
// it would go.
func (x *flowIndex) find(k *decoder.FlowKey, h uint32, flows []Flow) (slot uint64, pos int) {
	i := uint64(h) & x.mask
	for {
		e := x.slots[i]
		if e == 0 {
			return i, -1
		}
		if uint32(e>>32) == h {
			if p := int(uint32(e)) - 1; p < len(flows) && flows[p].Key == *k {
				return i, p
			}
		}
		i = (i + 1) & x.mask
	}
}

// insertAt fills the empty slot returned by find and grows the index when
// it is half full.
func (x *flowIndex) insertAt(slot uint64, h uint32, pos int) {
	x.slots[slot] = uint64(h)<<32 | uint64(pos+1)
	x.n++
	if x.n*2 > len(x.slots) {
		x.resize(x.n)
	}
}

// slotOf returns the slot that holds position pos of key k (which must be
// present).
func (x *flowIndex) slotOf(k *decoder.FlowKey, pos int) uint64 {
	i := uint64(x.hash(k)) & x.mask
	want := uint64(pos + 1)
	for uint32(x.slots[i]) != uint32(want) {
		i = (i + 1) & x.mask
	}
	return i
}

// move records that the flow at position from is now at position to.
func (x *flowIndex) move(k *decoder.FlowKey, from, to int) {
	i := x.slotOf(k, from)
	x.slots[i] = x.slots[i]&^0xffffffff | uint64(to+1)
}

// remove deletes the entry of k at position pos, shifting later entries of
// the probe run back so that no tombstone is left.
func (x *flowIndex) remove(k *decoder.FlowKey, pos int) {
	i := x.slotOf(k, pos)
	x.n--
	for {
		x.slots[i] = 0
		j := i
		for {
			j = (j + 1) & x.mask
			e := x.slots[j]
			if e == 0 {
				return
			}
			home := uint64(uint32(e>>32)) & x.mask
			// e may fill the hole at i unless its home lies cyclically in (i, j].
			if (j-home)&x.mask >= (j-i)&x.mask {
				x.slots[i] = e
				i = j
				break
			}
		}
	}
}

// resize re-places every entry into a slot array sized for n entries,
// using the stored hash bits (no key is read).
func (x *flowIndex) resize(n int) {
	old := x.slots
	x.alloc(n)
	for _, e := range old {
		if e == 0 {
			continue
		}
		i := uint64(uint32(e>>32)) & x.mask
		for x.slots[i] != 0 {
			i = (i + 1) & x.mask
		}
		x.slots[i] = e
		x.n++
	}
}
