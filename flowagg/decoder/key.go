package decoder

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Direction says whether a frame was received on the interface or sent by it.
type Direction uint8

const (
	// DirIn is a frame received on the interface (any AF_PACKET packet type
	// other than PACKET_OUTGOING).
	DirIn Direction = iota
	// DirOut is a frame sent by the interface (PACKET_OUTGOING).
	DirOut
)

// String returns the label value of the direction: "in" or "out".
func (d Direction) String() string {
	if d == DirOut {
		return "out"
	}
	return "in"
}

// Key flags. They are part of the key, so flows that differ only in a flag
// are different flows.
const (
	// FlagSrcPortFolded marks a key whose source port was folded away by
	// GranularityServerPort (the source was the ephemeral side).
	FlagSrcPortFolded uint8 = 1 << iota
	// FlagDstPortFolded is the same for the destination port.
	FlagDstPortFolded
)

// FlowKey identifies a flow inside one interface table: direction and
// 5-tuple. The interface is the table itself. It is 40 bytes with no padding
// and no pointers, so the Go map hashes it as one block of memory and the
// garbage collector never scans the table.
//
// For IPv4 the address occupies Src[0:4] and Dst[0:4] and the rest is zero.
// For ICMP and ICMPv6, SrcPort holds the ICMP type and DstPort the code.
type FlowKey struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	Proto            uint8
	Dir              Direction
	Family           uint8 // 4 or 6
	Flags            uint8 // flag* bits, set by granularity folding
}

// SrcAddr returns the source address.
func (k *FlowKey) SrcAddr() netip.Addr { return keyAddr(k.Family, &k.Src) }

// DstAddr returns the destination address.
func (k *FlowKey) DstAddr() netip.Addr { return keyAddr(k.Family, &k.Dst) }

func keyAddr(family uint8, b *[16]byte) netip.Addr {
	if family == 4 {
		return netip.AddrFrom4([4]byte{b[0], b[1], b[2], b[3]})
	}
	return netip.AddrFrom16(*b)
}

// SrcPortLabel returns the label value of the source port ("" when folded).
func (k *FlowKey) SrcPortLabel() string {
	if k.Flags&FlagSrcPortFolded != 0 {
		return ""
	}
	return strconv.Itoa(int(k.SrcPort))
}

// DstPortLabel returns the label value of the destination port ("" when folded).
func (k *FlowKey) DstPortLabel() string {
	if k.Flags&FlagDstPortFolded != 0 {
		return ""
	}
	return strconv.Itoa(int(k.DstPort))
}

// String formats the key for logs and reports.
func (k *FlowKey) String() string {
	return fmt.Sprintf("%s %s %s:%s -> %s:%s", k.Dir, ProtoName(k.Proto),
		k.SrcAddr(), k.SrcPortLabel(), k.DstAddr(), k.DstPortLabel())
}

// ProtoName returns the label value of an IP protocol number: a lower-case
// name for the common ones, the decimal number otherwise.
func ProtoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 2:
		return "igmp"
	case 4:
		return "ipip"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 33:
		return "dccp"
	case 41:
		return "ipv6"
	case 47:
		return "gre"
	case 50:
		return "esp"
	case 51:
		return "ah"
	case 58:
		return "icmpv6"
	case 59:
		return "ipv6-nonxt"
	case 89:
		return "ospf"
	case 103:
		return "pim"
	case 112:
		return "vrrp"
	case 132:
		return "sctp"
	case 136:
		return "udplite"
	}
	return strconv.Itoa(int(p))
}

// HasPorts reports whether the protocol carries 16-bit source and destination
// ports in the first four bytes of its header.
func HasPorts(p uint8) bool {
	switch p {
	case 6, 17, 33, 132, 136:
		return true
	}
	return false
}
