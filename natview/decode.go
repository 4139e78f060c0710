//go:build linux

package natview

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/ti-mo/conntrack"
)

// Attribute types of linux/netfilter/nfnetlink_conntrack.h that
// attribution and accounting read.
const (
	ctaTupleOrig     = 1
	ctaTupleReply    = 2
	ctaStatus        = 3
	ctaCountersOrig  = 9
	ctaCountersReply = 10
	ctaID            = 12

	ctaTupleIP    = 1
	ctaTupleProto = 2

	ctaIPv4Src = 1
	ctaIPv4Dst = 2
	ctaIPv6Src = 3
	ctaIPv6Dst = 4

	ctaProtoNum      = 1
	ctaProtoSrcPort  = 2
	ctaProtoDstPort  = 3
	ctaProtoICMPID   = 4
	ctaProtoICMPType = 5
	ctaProtoICMPCode = 6
	ctaProtoICMP6ID  = 7
	ctaProtoICMP6Typ = 8
	ctaProtoICMP6Cod = 9

	ctaCountersPackets   = 1
	ctaCountersBytes     = 2
	ctaCounters32Packets = 3
	ctaCounters32Bytes   = 4

	nlaTypeMask  = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
	nfgenmsgSize = 4
)

var errBadAttribute = errors.New("conntrack entry: truncated or malformed attribute")

// attrs walks netlink attributes in b, calling fn with each type and value.
func attrs(b []byte, fn func(typ uint16, v []byte) error) error {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if l < 4 || l > len(b) {
			return errBadAttribute
		}
		if err := fn(typ, b[4:l]); err != nil {
			return err
		}
		l = (l + 3) &^ 3
		if l > len(b) {
			return nil
		}
		b = b[l:]
	}
	return nil
}

// decodeFlow fills f with what natview reads of a ctnetlink message
// payload (nfgenmsg and attributes): id, status, both tuples, counters. It
// allocates nothing, so the dump of a large table costs no garbage;
// conntrack's own Event.Unmarshal (used for events) builds a whole Flow.
func decodeFlow(data []byte, f *conntrack.Flow) error {
	*f = conntrack.Flow{}
	if len(data) < nfgenmsgSize {
		return errBadAttribute
	}
	return attrs(data[nfgenmsgSize:], func(typ uint16, v []byte) error {
		switch typ {
		case ctaTupleOrig:
			return decodeTuple(v, &f.TupleOrig)
		case ctaTupleReply:
			return decodeTuple(v, &f.TupleReply)
		case ctaStatus:
			if len(v) < 4 {
				return errBadAttribute
			}
			f.Status = conntrack.Status(binary.BigEndian.Uint32(v))
		case ctaID:
			if len(v) < 4 {
				return errBadAttribute
			}
			f.ID = binary.BigEndian.Uint32(v)
		case ctaCountersOrig:
			return decodeCounter(v, &f.CountersOrig)
		case ctaCountersReply:
			f.CountersReply.Direction = true
			return decodeCounter(v, &f.CountersReply)
		}
		return nil
	})
}

func decodeTuple(b []byte, t *conntrack.Tuple) error {
	return attrs(b, func(typ uint16, v []byte) error {
		switch typ {
		case ctaTupleIP:
			return attrs(v, func(typ uint16, v []byte) error {
				var a netip.Addr
				switch {
				case (typ == ctaIPv4Src || typ == ctaIPv4Dst) && len(v) >= 4:
					a = netip.AddrFrom4([4]byte(v[:4]))
				case (typ == ctaIPv6Src || typ == ctaIPv6Dst) && len(v) >= 16:
					a = netip.AddrFrom16([16]byte(v[:16]))
				default:
					return nil
				}
				if typ == ctaIPv4Src || typ == ctaIPv6Src {
					t.IP.SourceAddress = a
				} else {
					t.IP.DestinationAddress = a
				}
				return nil
			})
		case ctaTupleProto:
			return attrs(v, func(typ uint16, v []byte) error {
				p := &t.Proto
				switch {
				case len(v) == 0:
					return errBadAttribute
				case typ == ctaProtoNum:
					p.Protocol = v[0]
					p.ICMPv4, p.ICMPv6 = v[0] == protoICMP, v[0] == protoICMPv6
				case typ == ctaProtoICMPType || typ == ctaProtoICMP6Typ:
					p.ICMPType = v[0]
				case typ == ctaProtoICMPCode || typ == ctaProtoICMP6Cod:
					p.ICMPCode = v[0]
				case len(v) < 2:
					return errBadAttribute
				case typ == ctaProtoSrcPort:
					p.SourcePort = binary.BigEndian.Uint16(v)
				case typ == ctaProtoDstPort:
					p.DestinationPort = binary.BigEndian.Uint16(v)
				case typ == ctaProtoICMPID || typ == ctaProtoICMP6ID:
					p.ICMPID = binary.BigEndian.Uint16(v)
				}
				return nil
			})
		}
		return nil
	})
}

func decodeCounter(b []byte, c *conntrack.Counter) error {
	return attrs(b, func(typ uint16, v []byte) error {
		switch {
		case (typ == ctaCountersPackets || typ == ctaCountersBytes) && len(v) >= 8:
			n := binary.BigEndian.Uint64(v)
			if typ == ctaCountersPackets {
				c.Packets = n
			} else {
				c.Bytes = n
			}
		case (typ == ctaCounters32Packets || typ == ctaCounters32Bytes) && len(v) >= 4:
			n := uint64(binary.BigEndian.Uint32(v))
			if typ == ctaCounters32Packets {
				c.Packets = n
			} else {
				c.Bytes = n
			}
		}
		return nil
	})
}
