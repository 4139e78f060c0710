package flowagg

import "encoding/binary"

// Reason is why a frame could not be decoded. Each reason is a label value
// of nta_capture_decode_errors_total.
type Reason uint8

// Decode error reasons.
const (
	ReasonNone             Reason = iota
	ReasonLinkTruncated           // shorter than its link-layer header (Ethernet, SLL)
	ReasonVLANTruncated           // an 802.1Q/802.1ad tag is cut off
	ReasonVLANTooDeep             // more than maxVLANTags stacked tags
	ReasonIPv4Truncated           // shorter than the IPv4 header it announces
	ReasonIPv4BadHeader           // version is not 4, IHL < 5 or total length < IHL
	ReasonIPv6Truncated           // shorter than the 40-byte IPv6 header
	ReasonIPv6BadHeader           // version is not 6
	ReasonIPv6ExtTruncated        // an extension header is cut off
	ReasonIPv6ExtTooMany          // more than maxIPv6Ext extension headers
	ReasonL4Truncated             // TCP/UDP ports or ICMP type/code are cut off
	ReasonARPTruncated            // an Ethernet/IPv4 ARP packet shorter than 28 bytes
	ReasonBadIPVersion            // raw-IP link whose first nibble is neither 4 nor 6
	ReasonUnsupportedLink         // a pcap link type the decoder does not know (offline only)
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonNone:             "none",
	ReasonLinkTruncated:    "link_truncated",
	ReasonVLANTruncated:    "vlan_truncated",
	ReasonVLANTooDeep:      "vlan_too_deep",
	ReasonIPv4Truncated:    "ipv4_truncated",
	ReasonIPv4BadHeader:    "ipv4_bad_header",
	ReasonIPv6Truncated:    "ipv6_truncated",
	ReasonIPv6BadHeader:    "ipv6_bad_header",
	ReasonIPv6ExtTruncated: "ipv6_ext_truncated",
	ReasonIPv6ExtTooMany:   "ipv6_ext_too_many",
	ReasonL4Truncated:      "l4_truncated",
	ReasonARPTruncated:     "arp_truncated",
	ReasonBadIPVersion:     "bad_ip_version",
	ReasonUnsupportedLink:  "unsupported_link",
}

// String returns the label value of the reason.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

const (
	maxVLANTags = 8
	maxIPv6Ext  = 16

	etherTypeIPv4   = 0x0800
	etherTypeARP    = 0x0806
	etherTypeIPv6   = 0x86dd
	etherType8021Q  = 0x8100
	etherType8021AD = 0x88a8
	etherTypeQinQ   = 0x9100 // pre-standard QinQ
	// etherType8023 stands for 802.3 frames whose type field is a length
	// (< 0x0600); they are counted under the label "802.3".
	etherType8023 = 0x0000
)

// linkType is the link layer a frame starts with.
type linkType uint8

const (
	linkEthernet linkType = iota
	linkSLL               // Linux cooked capture v1 (pcap LINKTYPE_LINUX_SLL)
	linkSLL2              // Linux cooked capture v2 (LINKTYPE_LINUX_SLL2)
	linkRaw               // raw IPv4 or IPv6, version from the first nibble
)

// frameKind is what the decoder made of a frame.
type frameKind uint8

const (
	kindFlow  frameKind = iota // an IP packet: result.key is valid
	kindARP                    // an Ethernet/IPv4 ARP packet: result.arp* valid
	kindOther                  // another EtherType: result.etherType
	kindError                  // malformed: result.reason
)

// result is what the decoder fills in. It lives on the caller's stack.
type result struct {
	key       FlowKey
	etherType uint16
	reason    Reason
	outgoing  bool // the link header says PACKET_OUTGOING (SLL, SLL2)
	arpIP     [4]byte
	arpMAC    [6]byte
}

// decoder holds the only state decoding needs: the IPv4/IPv6 fragment cache
// that lets non-first fragments be counted to their flow.
type decoder struct {
	frags fragCache
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// decode parses one frame of the given link type. now (unix ns) ages the
// fragment cache. It never panics on any input and never allocates.
func (d *decoder) decode(link linkType, b []byte, now int64, r *result) frameKind {
	switch link {
	case linkEthernet:
		if len(b) < 14 {
			r.reason = ReasonLinkTruncated
			return kindError
		}
		return d.etherPayload(be16(b[12:14]), b[14:], now, r)
	case linkSLL:
		if len(b) < 16 {
			r.reason = ReasonLinkTruncated
			return kindError
		}
		r.outgoing = be16(b[0:2]) == 4
		return d.etherPayload(be16(b[14:16]), b[16:], now, r)
	case linkSLL2:
		if len(b) < 20 {
			r.reason = ReasonLinkTruncated
			return kindError
		}
		r.outgoing = b[10] == 4
		return d.etherPayload(be16(b[0:2]), b[20:], now, r)
	default:
		if len(b) < 1 {
			r.reason = ReasonLinkTruncated
			return kindError
		}
		switch b[0] >> 4 {
		case 4:
			r.etherType = etherTypeIPv4
			return d.ipv4(b, now, r)
		case 6:
			r.etherType = etherTypeIPv6
			return d.ipv6(b, now, r)
		}
		r.reason = ReasonBadIPVersion
		return kindError
	}
}

// etherPayload skips VLAN tags (802.1Q, 802.1ad, old QinQ 0x9100) and
// dispatches on the inner EtherType.
func (d *decoder) etherPayload(et uint16, b []byte, now int64, r *result) frameKind {
	for tags := 0; et == etherType8021Q || et == etherType8021AD || et == etherTypeQinQ; tags++ {
		if tags == maxVLANTags {
			r.reason = ReasonVLANTooDeep
			return kindError
		}
		if len(b) < 4 {
			r.reason = ReasonVLANTruncated
			return kindError
		}
		et = be16(b[2:4])
		b = b[4:]
	}
	if et < 0x0600 {
		et = etherType8023
	}
	r.etherType = et
	switch et {
	case etherTypeIPv4:
		return d.ipv4(b, now, r)
	case etherTypeIPv6:
		return d.ipv6(b, now, r)
	case etherTypeARP:
		return arp(b, r)
	}
	return kindOther
}

// ipv4 parses an IPv4 header and the ports behind it. A non-first fragment
// carries no ports: it takes them from the fragment cache when the first
// fragment was seen, else it is counted with ports 0.
func (d *decoder) ipv4(b []byte, now int64, r *result) frameKind {
	if len(b) < 20 {
		r.reason = ReasonIPv4Truncated
		return kindError
	}
	if b[0]>>4 != 4 {
		r.reason = ReasonIPv4BadHeader
		return kindError
	}
	hl := int(b[0]&0x0f) * 4
	if hl < 20 {
		r.reason = ReasonIPv4BadHeader
		return kindError
	}
	if len(b) < hl {
		r.reason = ReasonIPv4Truncated
		return kindError
	}
	// Total length 0 is what Linux puts in IPv4 BIG TCP (GSO > 64 KiB)
	// packets seen on egress: keep them, just do not bound the payload.
	if tot := int(be16(b[2:4])); tot != 0 {
		if tot < hl {
			r.reason = ReasonIPv4BadHeader
			return kindError
		}
		if tot < len(b) {
			b = b[:tot] // Ethernet padding is not L4
		}
	}
	k := &r.key
	k.Family = 4
	copy(k.Src[:4], b[12:16])
	copy(k.Dst[:4], b[16:20])
	k.Proto = b[9]
	frag := be16(b[6:8])
	off, more := frag&0x1fff, frag&0x2000 != 0
	if off != 0 || more {
		id := uint32(be16(b[4:6]))
		if off != 0 {
			d.frags.lookup(k, id, now)
			return kindFlow
		}
		if !l4(b[hl:], r) {
			return kindError
		}
		d.frags.store(k, id, now)
		return kindFlow
	}
	if !l4(b[hl:], r) {
		return kindError
	}
	return kindFlow
}

// ipv6 parses an IPv6 header, walks the extension header chain and reads
// the ports behind it.
func (d *decoder) ipv6(b []byte, now int64, r *result) frameKind {
	if len(b) < 40 {
		r.reason = ReasonIPv6Truncated
		return kindError
	}
	if b[0]>>4 != 6 {
		r.reason = ReasonIPv6BadHeader
		return kindError
	}
	// Payload length 0 is a jumbogram (or a BIG TCP GSO packet): unbounded.
	if pl := int(be16(b[4:6])); pl != 0 && 40+pl < len(b) {
		b = b[:40+pl]
	}
	k := &r.key
	k.Family = 6
	copy(k.Src[:], b[8:24])
	copy(k.Dst[:], b[24:40])
	next := b[6]
	p := b[40:]
	fragmented, fragID := false, uint32(0)
	for n := 0; ; n++ {
		var hdrLen int
		switch next {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, dst opts, mobility, HIP, shim6
			if len(p) < 2 {
				r.reason = ReasonIPv6ExtTruncated
				return kindError
			}
			hdrLen = (int(p[1]) + 1) * 8
		case 51: // AH counts in 4-octet units, minus 2
			if len(p) < 2 {
				r.reason = ReasonIPv6ExtTruncated
				return kindError
			}
			hdrLen = (int(p[1]) + 2) * 4
		case 44: // fragment
			if len(p) < 8 {
				r.reason = ReasonIPv6ExtTruncated
				return kindError
			}
			hdrLen = 8
			fragmented = true
			fragID = binary.BigEndian.Uint32(p[4:8])
			if be16(p[2:4])>>3 != 0 { // non-first fragment: no L4 header here
				k.Proto = p[0]
				d.frags.lookup(k, fragID, now)
				return kindFlow
			}
		default:
			k.Proto = next
			if !l4(p, r) {
				return kindError
			}
			if fragmented {
				d.frags.store(k, fragID, now)
			}
			return kindFlow
		}
		if n == maxIPv6Ext {
			r.reason = ReasonIPv6ExtTooMany
			return kindError
		}
		if len(p) < hdrLen {
			r.reason = ReasonIPv6ExtTruncated
			return kindError
		}
		next = p[0]
		p = p[hdrLen:]
	}
}

// l4 reads ports (TCP, UDP, SCTP, DCCP, UDP-Lite) or ICMP type and code.
// Other protocols have ports 0. It reports false when the header is cut.
func l4(p []byte, r *result) bool {
	k := &r.key
	switch {
	case hasPorts(k.Proto):
		if len(p) < 4 {
			r.reason = ReasonL4Truncated
			return false
		}
		k.SrcPort = be16(p[0:2])
		k.DstPort = be16(p[2:4])
	case k.Proto == 1 || k.Proto == 58:
		if len(p) < 2 {
			r.reason = ReasonL4Truncated
			return false
		}
		k.SrcPort = uint16(p[0])
		k.DstPort = uint16(p[1])
	}
	return true
}

// arp parses an ARP packet. Only Ethernet/IPv4 ARP feeds the binding
// tracker; other hardware or protocol types are counted by EtherType only.
func arp(b []byte, r *result) frameKind {
	if len(b) < 8 {
		r.reason = ReasonARPTruncated
		return kindError
	}
	if be16(b[0:2]) != 1 || be16(b[2:4]) != etherTypeIPv4 || b[4] != 6 || b[5] != 4 {
		return kindOther
	}
	if len(b) < 28 {
		r.reason = ReasonARPTruncated
		return kindError
	}
	copy(r.arpMAC[:], b[8:14])
	copy(r.arpIP[:], b[14:18])
	return kindARP
}
