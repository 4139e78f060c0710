//go:build linux

package hostnet

import (
	"encoding/binary"
	"maps"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ifinfo builds an RTM_NEWLINK message of the given family and ifindex whose
// attributes are produced by enc.
func ifinfo(t testing.TB, family uint8, index int32, enc func(ae *netlink.AttributeEncoder)) netlink.Message {
	t.Helper()
	hdr := make([]byte, unix.SizeofIfInfomsg)
	hdr[0] = family
	binary.NativeEndian.PutUint32(hdr[4:8], uint32(index))
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, "port")
	ae.Uint32(unix.IFLA_MASTER, 99)
	if enc != nil {
		enc(ae)
	}
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWLINK}, Data: append(hdr, b...)}
}

// protinfo encodes a nested IFLA_PROTINFO like the bridge driver does.
func protinfo(state uint8) func(ae *netlink.AttributeEncoder) {
	return func(ae *netlink.AttributeEncoder) {
		ae.Nested(unix.IFLA_PROTINFO, func(nae *netlink.AttributeEncoder) error {
			nae.Uint8(unix.IFLA_BRPORT_STATE, state)
			nae.Uint16(unix.IFLA_BRPORT_PRIORITY, 32)
			nae.Uint32(unix.IFLA_BRPORT_COST, 2)
			nae.Uint8(unix.IFLA_BRPORT_MODE, 0)
			return nil
		})
	}
}

func TestParseBridgePorts(t *testing.T) {
	msgs := []netlink.Message{
		ifinfo(t, unix.AF_BRIDGE, 3, protinfo(0)),
		ifinfo(t, unix.AF_BRIDGE, 4, protinfo(1)),
		ifinfo(t, unix.AF_BRIDGE, 5, protinfo(2)),
		ifinfo(t, unix.AF_BRIDGE, 6, protinfo(3)),
		ifinfo(t, unix.AF_BRIDGE, 7, protinfo(4)),
		ifinfo(t, unix.AF_BRIDGE, 8, protinfo(9)),
		// Kernels before 5.2 nest without NLA_F_NESTED.
		ifinfo(t, unix.AF_BRIDGE, 9, func(ae *netlink.AttributeEncoder) {
			inner := netlink.NewAttributeEncoder()
			inner.Uint8(unix.IFLA_BRPORT_STATE, 3)
			inner.Uint8(unix.IFLA_BRPORT_GUARD, 0)
			b, _ := inner.Encode()
			ae.Bytes(unix.IFLA_PROTINFO, b)
		}),
		// Ancient kernels: a bare u8.
		ifinfo(t, unix.AF_BRIDGE, 10, func(ae *netlink.AttributeEncoder) { ae.Uint8(unix.IFLA_PROTINFO, 4) }),
		// A NIC's own ndo_bridge_getlink answer: protinfo without a state.
		ifinfo(t, unix.AF_BRIDGE, 11, func(ae *netlink.AttributeEncoder) {
			ae.Nested(unix.IFLA_PROTINFO, func(nae *netlink.AttributeEncoder) error {
				nae.Uint8(unix.IFLA_BRPORT_MODE, 1)
				return nil
			})
		}),
		// No protinfo at all, another family, another message type.
		ifinfo(t, unix.AF_BRIDGE, 12, nil),
		ifinfo(t, unix.AF_UNSPEC, 13, protinfo(3)),
		{Header: netlink.Header{Type: unix.NLMSG_DONE}, Data: []byte{0, 0, 0, 0}},
	}
	got, err := parseBridgePorts(msgs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{
		3: "disabled", 4: "listening", 5: "learning", 6: "forwarding", 7: "blocking",
		8: "unknown(9)", 9: "forwarding", 10: "blocking",
	}
	if !maps.Equal(got, want) {
		t.Errorf("parseBridgePorts = %v, want %v", got, want)
	}
}

func TestParseBridgePortsErrors(t *testing.T) {
	short := netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWLINK}, Data: []byte{unix.AF_BRIDGE, 0, 0}}
	if _, err := parseBridgePorts([]netlink.Message{short}); err == nil {
		t.Error("short ifinfomsg: no error")
	}
	bad := ifinfo(t, unix.AF_BRIDGE, 3, protinfo(3))
	bad.Data = append(bad.Data, 0xff, 0xff, 0x01) // truncated attribute header
	if _, err := parseBridgePorts([]netlink.Message{bad}); err == nil {
		t.Error("truncated attributes: no error")
	}
	if got, err := parseBridgePorts(nil); err != nil || len(got) != 0 {
		t.Errorf("empty dump = %v, %v", got, err)
	}
}
