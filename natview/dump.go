//go:build linux

package natview

import (
	"fmt"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"
)

// ctGet is IPCTNL_MSG_CT_GET: with NLM_F_DUMP, the whole table.
const ctGet = 1

// dumper streams the conntrack table: each entry is decoded and handed on
// as its datagram arrives, so a dump of 100k entries never holds them all
// (conntrack.Conn.Dump keeps every message and every Flow until the end:
// about 150 MiB and a second for 100k entries).
type dumper struct {
	c *netlink.Conn
}

// dumpBuffer is the receive buffer of a dump. The kernel sizes a dump's
// datagrams after the reader's buffer (up to 32 KiB): a peek with no buffer
// (netlink's default) gets 4 KiB datagrams, eight times the syscalls and
// the kernel's dump restarts.
const dumpBuffer = 64 << 10

func dialDumper() (*dumper, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{MessageBufferSize: dumpBuffer})
	if err != nil {
		return nil, err
	}
	return &dumper{c: c}, nil
}

func (d *dumper) Close() error { return d.c.Close() }

// dump calls fn for every entry of the table, in the kernel's order, with a
// Flow it reuses for the next entry. It never asks the kernel to zero
// counters.
func (d *dumper) dump(fn func(*conntrack.Flow)) error {
	req, err := netfilter.MarshalNetlink(netfilter.Header{
		SubsystemID: netfilter.NFSubsysCTNetlink,
		MessageType: ctGet,
		Family:      netfilter.ProtoUnspec, // IPv4 and IPv6
		Flags:       netlink.Request | netlink.Dump,
	}, nil)
	if err != nil {
		return err
	}
	if _, err := d.c.Send(req); err != nil {
		return err
	}
	var f conntrack.Flow // reused: fn must not keep it
	for m, err := range d.c.ReceiveIter() {
		if err != nil {
			return err
		}
		if err := decodeFlow(m.Data, &f); err != nil {
			return fmt.Errorf("decode conntrack entry: %w", err)
		}
		fn(&f)
	}
	return nil
}
