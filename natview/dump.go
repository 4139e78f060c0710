//go:build linux

package natview

import (
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"
)

// ctGet is IPCTNL_MSG_CT_GET: with NLM_F_DUMP, the whole table.
const ctGet = 1

// ctaStatusMask is CTA_STATUS_MASK: with CTA_STATUS in a dump request, the
// kernel (5.17 and later) lists only entries whose status & mask == status.
const ctaStatusMask = 26

// statusFilter selects entries by status bits in the kernel; the zero value
// selects every entry.
type statusFilter struct{ value, mask conntrack.Status }

// matches reports whether a listed entry passes the filter: an older kernel
// ignores the filter and lists everything.
func (sf statusFilter) matches(s conntrack.Status) bool { return s&sf.mask == sf.value }

// The two dumps that list exactly the NAT'd entries: DNAT'd ones, then
// source-NAT'd ones that are not DNAT'd. Filling an entry is most of the
// kernel's cost of a dump, and on most hosts most entries are not NAT'd.
var natFilters = [2]statusFilter{
	{conntrack.StatusDstNAT, conntrack.StatusDstNAT},
	{conntrack.StatusSrcNAT, conntrack.StatusSrcNAT | conntrack.StatusDstNAT},
}

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

// dumpBatch is how many entries the receiving goroutine hands on at once.
const dumpBatch = 256

// dump applies every entry of the table, in the kernel's order, in batches
// of decoded Flows that apply must not keep. Receiving (where the kernel
// fills the next datagram, most of a dump's time) runs in its own goroutine
// while the caller decodes and applies the previous batch. It never asks
// the kernel to zero counters.
func (d *dumper) dump(filter statusFilter, apply func([]conntrack.Flow)) error {
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	if filter.mask != 0 {
		ae.Uint32(ctaStatus, uint32(filter.value))
		ae.Uint32(ctaStatusMask, uint32(filter.mask))
	}
	req, err := netfilter.EncodeNetlink(netfilter.Header{
		SubsystemID: netfilter.NFSubsysCTNetlink,
		MessageType: ctGet,
		Family:      netfilter.ProtoUnspec, // IPv4 and IPv6
		Flags:       netlink.Request | netlink.Dump,
	}, ae)
	if err != nil {
		return err
	}
	if _, err := d.c.Send(req); err != nil {
		return err
	}
	batches := make(chan [][]byte, 4)
	stop := make(chan struct{})
	recvErr := make(chan error, 1)
	go func() {
		defer close(batches)
		batch := make([][]byte, 0, dumpBatch)
		// A message's Data stays valid: with a fixed receive buffer, netlink
		// copies each datagram to memory of its own.
		for m, err := range d.c.ReceiveIter() {
			if err != nil {
				recvErr <- err
				return
			}
			if batch = append(batch, m.Data); len(batch) == dumpBatch {
				select {
				case batches <- batch:
				case <-stop:
					return // the rest of the dump is read and discarded
				}
				batch = make([][]byte, 0, dumpBatch)
			}
		}
		if len(batch) > 0 {
			select {
			case batches <- batch:
			case <-stop:
			}
		}
	}()
	flows := make([]conntrack.Flow, dumpBatch)
	var decodeErr error
	for batch := range batches {
		if decodeErr != nil {
			continue
		}
		for i, data := range batch {
			if err := decodeFlow(data, &flows[i]); err != nil {
				decodeErr = fmt.Errorf("decode conntrack entry: %w", err)
				close(stop)
				break
			}
		}
		if decodeErr == nil {
			apply(flows[:len(batch)])
		}
	}
	select {
	case err := <-recvErr:
		return err
	default:
		return decodeErr
	}
}
