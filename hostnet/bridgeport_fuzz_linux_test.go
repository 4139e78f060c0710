//go:build linux

package hostnet

import (
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// FuzzParseBridgePorts feeds arbitrary payloads to the parser of the kernel's
// AF_BRIDGE link dump as one or two RTM_NEWLINK messages: it must never
// panic, and every state it reports must be a name iproute2 uses or
// unknown(N), for an ifindex taken from the message.
//
//	go test -run='^$' -fuzz=FuzzParseBridgePorts -fuzztime=10s ./hostnet/
func FuzzParseBridgePorts(f *testing.F) {
	for _, m := range []netlink.Message{
		ifinfo(f, unix.AF_BRIDGE, 3, protinfo(3)),
		ifinfo(f, unix.AF_BRIDGE, 10, func(ae *netlink.AttributeEncoder) { ae.Uint8(unix.IFLA_PROTINFO, 4) }),
		ifinfo(f, unix.AF_BRIDGE, 12, nil),
		ifinfo(f, unix.AF_UNSPEC, 13, protinfo(1)),
	} {
		f.Add(m.Data, []byte{})
	}
	f.Add([]byte{unix.AF_BRIDGE, 0, 0}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		msgs := []netlink.Message{{Header: netlink.Header{Type: unix.RTM_NEWLINK}, Data: a}}
		if len(b) > 0 {
			msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWLINK}, Data: b})
		}
		states, err := parseBridgePorts(msgs)
		if err != nil {
			return
		}
		if len(states) > len(msgs) {
			t.Fatalf("%d states from %d messages", len(states), len(msgs))
		}
		for idx, s := range states {
			switch s {
			case "disabled", "listening", "learning", "forwarding", "blocking":
			default:
				if !strings.HasPrefix(s, "unknown(") {
					t.Fatalf("ifindex %d: state %q", idx, s)
				}
			}
		}
	})
}
