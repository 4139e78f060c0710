//go:build linux

package natview

import (
	"encoding/binary"
	"testing"

	"net/netip"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
)

// ctMessage encodes a ctnetlink entry as the kernel sends it in a dump.
func ctMessage(t *testing.T, id uint32, status uint32, orig, reply func(ae *netlink.AttributeEncoder), co, cr [2]uint64) netlink.Message {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	ae.Nested(ctaTupleOrig|0x8000, func(ae *netlink.AttributeEncoder) error { orig(ae); return nil })
	ae.Nested(ctaTupleReply|0x8000, func(ae *netlink.AttributeEncoder) error { reply(ae); return nil })
	ae.Uint32(ctaStatus, status)
	ae.Uint32(7, 120) // CTA_TIMEOUT: ignored
	ae.Nested(ctaCountersOrig|0x8000, func(ae *netlink.AttributeEncoder) error {
		ae.Uint64(ctaCountersPackets, co[0])
		ae.Uint64(ctaCountersBytes, co[1])
		return nil
	})
	ae.Nested(ctaCountersReply|0x8000, func(ae *netlink.AttributeEncoder) error {
		ae.Uint64(ctaCountersPackets, cr[0])
		ae.Uint64(ctaCountersBytes, cr[1])
		return nil
	})
	ae.Uint32(ctaID, id)
	m, err := netfilter.EncodeNetlink(netfilter.Header{SubsystemID: netfilter.NFSubsysCTNetlink, MessageType: 0, Family: netfilter.ProtoIPv4, Flags: netlink.Multi}, ae)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func tuple(proto uint8, src, dst []byte, v6 bool, sport, dport uint16, icmp bool) func(ae *netlink.AttributeEncoder) {
	return func(ae *netlink.AttributeEncoder) {
		ae.Nested(ctaTupleIP|0x8000, func(ae *netlink.AttributeEncoder) error {
			s, d := uint16(ctaIPv4Src), uint16(ctaIPv4Dst)
			if v6 {
				s, d = ctaIPv6Src, ctaIPv6Dst
			}
			ae.Bytes(s, src)
			ae.Bytes(d, dst)
			return nil
		})
		ae.Nested(ctaTupleProto|0x8000, func(ae *netlink.AttributeEncoder) error {
			ae.Uint8(ctaProtoNum, proto)
			if icmp {
				ae.Uint16(ctaProtoICMPID, sport)
				ae.Uint8(ctaProtoICMPType, uint8(dport>>8))
				ae.Uint8(ctaProtoICMPCode, uint8(dport))
				return nil
			}
			ae.Uint16(ctaProtoSrcPort, sport)
			ae.Uint16(ctaProtoDstPort, dport)
			return nil
		})
	}
}

// The dump decoder reads what natview needs exactly as ti-mo/conntrack's
// own decoder does, for IPv4 TCP with DNAT, IPv6 and ICMP.
func TestDecodeFlowAgreesWithConntrack(t *testing.T) {
	v4 := func(s string) []byte { a := addr(s).As4(); return a[:] }
	v6 := func(s string) []byte { a := addr(s).As16(); return a[:] }
	for name, m := range map[string]netlink.Message{
		"tcp dnat": ctMessage(t, 77, uint32(dnat|conntrack.StatusConfirmed|conntrack.StatusAssured),
			tuple(protoTCP, v4("198.18.0.2"), v4("198.18.0.1"), false, 40000, 8080, false),
			tuple(protoTCP, v4("172.17.0.2"), v4("198.18.0.2"), false, 80, 40000, false), [2]uint64{7, 20372}, [2]uint64{5, 268}),
		"tcp6 snat": ctMessage(t, 78, uint32(snat|conntrack.StatusConfirmed),
			tuple(protoTCP, v6("fd00:17::2"), v6("2001:db8::9"), true, 50000, 443, false),
			tuple(protoTCP, v6("2001:db8::9"), v6("2001:db8::1"), true, 443, 50000, false), [2]uint64{1, 2}, [2]uint64{3, 4}),
		"icmp": ctMessage(t, 79, uint32(snat|conntrack.StatusConfirmed),
			tuple(protoICMP, v4("172.17.0.3"), v4("198.18.0.2"), false, 7, 8<<8, true),
			tuple(protoICMP, v4("198.18.0.2"), v4("198.18.0.1"), false, 7, 0, true), [2]uint64{4, 336}, [2]uint64{4, 336}),
	} {
		var ev conntrack.Event
		if err := ev.Unmarshal(m); err != nil {
			t.Fatalf("%s: conntrack: %v", name, err)
		}
		var got conntrack.Flow
		if err := decodeFlow(m.Data, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := conntrack.Flow{ID: ev.Flow.ID, Status: ev.Flow.Status, TupleOrig: ev.Flow.TupleOrig, TupleReply: ev.Flow.TupleReply,
			CountersOrig: ev.Flow.CountersOrig, CountersReply: ev.Flow.CountersReply}
		if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
			t.Errorf("%s (-conntrack +natview):\n%s", name, d)
		}
		if keyOf(&got) != keyOf(ev.Flow) || infoOf(&got) != infoOf(ev.Flow) {
			t.Errorf("%s: key or attribution input differ", name)
		}
	}
	var f conntrack.Flow
	if err := decodeFlow([]byte{2, 0, 0, 0, 8, 0, 1, 0, 1, 2}, &f); err == nil {
		t.Error("truncated attribute: no error")
	}
}

func BenchmarkDecodeFlow(b *testing.B) {
	t := &testing.T{}
	m := ctMessage(t, 77, uint32(dnat), tuple(protoTCP, []byte{198, 18, 0, 2}, []byte{198, 18, 0, 1}, false, 40000, 8080, false),
		tuple(protoTCP, []byte{172, 17, 0, 2}, []byte{198, 18, 0, 2}, false, 80, 40000, false), [2]uint64{7, 20372}, [2]uint64{5, 268})
	var f conntrack.Flow
	b.ReportAllocs()
	for b.Loop() {
		_ = decodeFlow(m.Data, &f)
	}
}
