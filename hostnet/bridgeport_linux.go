//go:build linux

package hostnet

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// bridgePortStates returns the STP state of every bridge port in a namespace,
// by ifindex. vishvananda/netlink ignores IFLA_INFO_SLAVE_DATA of bridge
// ports, so this does what `bridge link show` does: one RTM_GETLINK dump
// with family AF_BRIDGE, answered by the bridge driver with IFLA_PROTINFO.
// nsfd is an open netns file, or 0 for the caller's own namespace.
func bridgePortStates(nsfd int, deadline time.Time) (map[int]string, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: nsfd})
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink for bridge ports: %w", err)
	}
	defer c.Close()
	if !deadline.IsZero() {
		if err := c.SetDeadline(deadline); err != nil {
			return nil, fmt.Errorf("set rtnetlink deadline: %w", err)
		}
	}
	ifi := make([]byte, unix.SizeofIfInfomsg)
	ifi[0] = unix.AF_BRIDGE
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request | netlink.Dump},
		Data:   ifi,
	})
	if err != nil {
		return nil, fmt.Errorf("dump bridge ports (RTM_GETLINK AF_BRIDGE): %w", err)
	}
	return parseBridgePorts(msgs)
}

// Bridge port states, BR_STATE_* in linux/if_bridge.h.
const (
	brStateDisabled   = 0
	brStateListening  = 1
	brStateLearning   = 2
	brStateForwarding = 3
	brStateBlocking   = 4
)

// stpStateName names a bridge port state (BR_STATE_* in linux/if_bridge.h)
// as iproute2 does.
func stpStateName(s uint8) string {
	switch s {
	case brStateDisabled:
		return "disabled"
	case brStateListening:
		return "listening"
	case brStateLearning:
		return "learning"
	case brStateForwarding:
		return "forwarding"
	case brStateBlocking:
		return "blocking"
	}
	return fmt.Sprintf("unknown(%d)", s)
}

// parseBridgePorts extracts IFLA_PROTINFO/IFLA_BRPORT_STATE from an AF_BRIDGE
// RTM_NEWLINK dump. Messages without a port state (a NIC's own
// ndo_bridge_getlink answer) are skipped. Very old kernels sent IFLA_PROTINFO
// as a bare u8 state; that form is accepted too.
func parseBridgePorts(msgs []netlink.Message) (map[int]string, error) {
	states := make(map[int]string)
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK {
			continue
		}
		if len(m.Data) < unix.SizeofIfInfomsg {
			return nil, fmt.Errorf("bridge port message: %d bytes, shorter than ifinfomsg", len(m.Data))
		}
		if m.Data[0] != unix.AF_BRIDGE {
			continue
		}
		index := int(int32(binary.NativeEndian.Uint32(m.Data[4:8])))
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfInfomsg:])
		if err != nil {
			return nil, fmt.Errorf("bridge port %d: %w", index, err)
		}
		var (
			state uint8
			found bool
		)
		for ad.Next() {
			if ad.Type() != unix.IFLA_PROTINFO {
				continue
			}
			// Kernels before 5.2 nest without NLA_F_NESTED; before 2.6.37
			// the attribute was the bare state.
			if b := ad.Bytes(); ad.TypeFlags()&netlink.Nested == 0 && len(b) == 1 {
				state, found = b[0], true
				continue
			}
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() == unix.IFLA_BRPORT_STATE {
						state, found = nad.Uint8(), true
					}
				}
				return nad.Err()
			})
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("bridge port %d: %w", index, err)
		}
		if found {
			states[index] = stpStateName(state)
		}
	}
	return states, nil
}
