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
	// read receives one datagram of the dump into buf; nil reads the
	// socket of c (a test's fake connection has none).
	read func(buf []byte) (int, error)
	// broken is set by a dump that failed: the kernel may still be
	// sending it, so the socket cannot carry another (the watcher closes
	// it and dials anew).
	broken error
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

// dumpBuffers is how many datagrams can be in flight between the receiving
// goroutine and the one applying them.
const dumpBuffers = 8

// dump applies every entry of the table, in the kernel's order, datagram by
// datagram, as decoded Flows that apply must not keep. Receiving (where the
// kernel fills the next datagram, most of a dump's time) runs in its own
// goroutine while the caller decodes and applies the previous datagram. It
// never asks the kernel to zero counters.
//
// The datagrams are read straight into a few reused buffers through the
// socket's raw connection rather than netlink.Conn.Receive, which copies
// every datagram and builds a Message for every entry: 16 MiB of garbage
// for a dump of 100k entries, paid again at every resync.
func (d *dumper) dump(filter statusFilter, apply func([]conntrack.Flow)) (err error) {
	if d.broken != nil {
		return fmt.Errorf("conntrack dump socket unusable after an earlier failure (%w): dial a new one", d.broken)
	}
	defer func() {
		if err != nil {
			d.broken = err
		}
	}()
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
	read := d.read
	if read == nil {
		rc, err := d.c.SyscallConn()
		if err != nil {
			return err
		}
		read = func(buf []byte) (int, error) {
			var n int
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				// MSG_TRUNC: n is the datagram's length even when it did
				// not fit, so a truncated one is an error, not lost entries.
				for {
					n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_TRUNC)
					if rerr != unix.EINTR {
						break
					}
				}
				return rerr != unix.EAGAIN // else wait until readable
			})
			if err == nil {
				err = rerr
			}
			if err == nil && n > len(buf) {
				err = fmt.Errorf("conntrack dump datagram of %d bytes does not fit the %d-byte buffer", n, len(buf))
			}
			return n, err
		}
	}
	if _, err := d.c.Send(req); err != nil {
		return err
	}
	free := make(chan []byte, dumpBuffers)
	for range dumpBuffers {
		free <- make([]byte, dumpBuffer)
	}
	full := make(chan []byte, dumpBuffers)
	recvErr := make(chan error, 1)
	go func() {
		defer close(full)
		for {
			buf := <-free
			n, err := read(buf)
			if err != nil {
				recvErr <- err
				return
			}
			full <- buf[:n]
			if last, _ := endOfDump(buf[:n]); last {
				return
			}
		}
	}()
	flows := make([]conntrack.Flow, 0, dumpBuffer/128)
	var dumpErr error
	for dgram := range full {
		if dumpErr == nil {
			flows = flows[:0]
			dumpErr = eachEntry(dgram, func(data []byte) error {
				flows = append(flows, conntrack.Flow{})
				if err := decodeFlow(data, &flows[len(flows)-1]); err != nil {
					return fmt.Errorf("decode conntrack entry: %w", err)
				}
				return nil
			})
			if dumpErr == nil && len(flows) > 0 {
				apply(flows)
			}
		}
		// After a decoding error the rest of the dump is still read (the
		// receiver stops at its end) and dropped.
		free <- dgram[:cap(dgram)]
	}
	select {
	case err := <-recvErr:
		return err
	default:
		return dumpErr
	}
}

// Netlink message header (struct nlmsghdr) layout.
const (
	nlmsgHeaderLen = 16
	nlmsgDone      = 0x3
	nlmsgError     = 0x2
)

// eachEntry calls fn with the payload of every conntrack message in one
// datagram of a dump; the dump's end (NLMSG_DONE) and errors (NLMSG_ERROR,
// or DONE carrying one) end the walk, the latter as an error.
func eachEntry(dgram []byte, fn func(payload []byte) error) error {
	_, err := walkDatagram(dgram, fn)
	return err
}

// endOfDump reports whether a datagram ends the dump (it holds NLMSG_DONE
// or NLMSG_ERROR) and the error it carries, if any.
func endOfDump(dgram []byte) (bool, error) { return walkDatagram(dgram, nil) }

// walkDatagram walks the netlink messages of a datagram, calling entry (if
// not nil) with each conntrack message's payload, up to the end of the dump:
// NLMSG_DONE or NLMSG_ERROR, whose negative errno is the dump's error.
func walkDatagram(dgram []byte, entry func(payload []byte) error) (end bool, err error) {
	for b := dgram; len(b) >= nlmsgHeaderLen; {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHeaderLen || l > len(b) {
			return true, fmt.Errorf("conntrack dump: malformed netlink message (length %d of %d bytes left)", l, len(b))
		}
		switch binary.NativeEndian.Uint16(b[4:]) {
		case nlmsgDone, nlmsgError:
			var code int32
			if l >= nlmsgHeaderLen+4 {
				code = int32(binary.NativeEndian.Uint32(b[nlmsgHeaderLen:]))
			}
			if code < 0 {
				return true, fmt.Errorf("conntrack dump: %w", unix.Errno(-code))
			}
			return true, nil
		default:
			if entry != nil {
				if err := entry(b[nlmsgHeaderLen:l]); err != nil {
					return false, err
				}
			}
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return false, nil
}
