//go:build linux

package afpacket

// The ring is written here with golang.org/x/sys/unix rather than taken from
// github.com/gopacket/gopacket/afpacket. That package builds without cgo and
// speaks TPACKET_V3, fanout and tpacket_stats_v3, but:
//   - it does not expose sll_pkttype, so outgoing frames (PACKET_OUTGOING → decoder.DirOut)
//     cannot be told from incoming ones;
//   - it hands out one packet per call under a mutex and hides block boundaries,
//     which is where the flow table is published;
//   - a socket error (ENETDOWN when the interface goes away) surfaces as a bare
//     ErrPoll, and its running statistics are uint32 that wrap;
//   - its poll() blocks an OS thread per socket; this ring parks goroutines in
//     the runtime netpoller instead, which matters with one socket per container veth.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// frameSink receives the frames of one ring; *flowagg.IfaceTable implements it.
type frameSink interface {
	Add(frame []byte, wireLen int, dir decoder.Direction, ts time.Time)
	Publish()
}

var _ frameSink = (*flowagg.IfaceTable)(nil)

// partPublisher is a frameSink that can copy a snapshot in slices between
// ring blocks (*flowagg.IfaceTable.PublishPart); run uses it when the sink has it.
type partPublisher interface {
	PublishPart() (copying bool)
}

var _ partPublisher = (*flowagg.IfaceTable)(nil)

// ringOptions are the per-socket settings derived from CaptureConfig.
type ringOptions struct {
	name         string
	ifindex      int
	blockSize    int
	numBlocks    int
	blockTimeout time.Duration
	filter       []bpf.RawInstruction // socket filter incl. snaplen, see socketFilter
	fanout       bool                 // join or create a PACKET_FANOUT_HASH group
	fanoutID     int                  // group to join; -1 creates one with a kernel-chosen id
}

// ring is one AF_PACKET socket with a memory-mapped TPACKET_V3 receive ring
// bound to one interface.
type ring struct {
	opts     ringOptions
	file     *os.File // owns the socket; registered with the runtime netpoller
	raw      syscall.RawConn
	mem      []byte // the mmapped ring, numBlocks blocks of blockSize bytes
	next     int    // index of the next block to hand back to the kernel
	fanoutID int    // group id when fanout is on
	vlan     []byte // scratch for frames whose VLAN tag the kernel stripped
	stopping atomic.Bool
	woken    atomic.Bool // wake was called; wait returns at once

	statsMu sync.Mutex
	totals  IfaceStats // Packets, Drops, FreezeQueue running totals
}

// openSocketError says what to do when an AF_PACKET socket cannot be created.
func openSocketError(err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("AF_PACKET socket: %w — run as root or grant CAP_NET_RAW (setcap cap_net_raw+ep, docker --cap-add NET_RAW)", err)
	case errors.Is(err, unix.EAFNOSUPPORT):
		return fmt.Errorf("AF_PACKET socket: %w — the kernel lacks CONFIG_PACKET; load module af_packet", err)
	}
	return fmt.Errorf("AF_PACKET socket: %w", err)
}

// attachFilter attaches a classic BPF program (none when empty) to fd.
func attachFilter(fd int, filter []bpf.RawInstruction) error {
	if len(filter) == 0 {
		return nil
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: (*unix.SockFilter)(unsafe.Pointer(&filter[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fmt.Errorf("attach capture filter: %w: %w — fix --collector.flows.filter-bpf (check it with `tcpdump -d`); capture stops rather than retrying it", ErrFilterRejected, err)
	}
	return nil
}

// errIfaceGone says the interface the ring was bound to no longer exists.
var errIfaceGone = errors.New("interface vanished")

// openRing creates the socket, attaches the filter, maps the ring, binds to the
// interface and joins the fanout group, in that order: a socket created with
// protocol 0 receives nothing until bind, so no unfiltered frame gets in.
func openRing(o ringOptions) (r *ring, err error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, openSocketError(err)
	}
	r = &ring{opts: o, fanoutID: o.fanoutID, vlan: make([]byte, 0, o.blockSize)}
	defer func() {
		if err != nil {
			r.close(fd)
		}
	}()
	if err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return r, fmt.Errorf("%s: setsockopt PACKET_VERSION TPACKET_V3: %w — needs Linux 3.2 or later", o.name, err)
	}
	if err = attachFilter(fd, o.filter); err != nil {
		return r, fmt.Errorf("%s: %w", o.name, err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(o.blockSize),
		Block_nr:       uint32(o.numBlocks),
		Frame_size:     unix.TPACKET_ALIGNMENT << 7, // 2048; V3 packs frames, but the kernel checks the geometry
		Retire_blk_tov: uint32(o.blockTimeout / time.Millisecond),
	}
	req.Frame_nr = req.Block_nr * (req.Block_size / req.Frame_size)
	if err = unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return r, fmt.Errorf("%s: PACKET_RX_RING of %d blocks of %d bytes: %w — lower the block size or count", o.name, o.numBlocks, o.blockSize, err)
	}
	if r.mem, err = unix.Mmap(fd, 0, o.blockSize*o.numBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return r, fmt.Errorf("%s: mmap capture ring of %d bytes: %w — lower the block size or count, or raise the memlock limit", o.name, o.blockSize*o.numBlocks, err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: o.ifindex}
	if err = unix.Bind(fd, sa); err != nil {
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
			err = fmt.Errorf("%w: %w", errIfaceGone, err)
		}
		return r, fmt.Errorf("%s: bind AF_PACKET socket to ifindex %d: %w", o.name, o.ifindex, err)
	}
	if o.fanout {
		if err = r.joinFanout(fd); err != nil {
			return r, err
		}
	}
	r.file = os.NewFile(uintptr(fd), "packet:"+o.name)
	if r.raw, err = r.file.SyscallConn(); err == nil {
		err = r.file.SetReadDeadline(time.Time{})
	}
	if err != nil {
		return r, fmt.Errorf("%s: AF_PACKET socket not pollable: %w", o.name, err)
	}
	return r, nil
}

// joinFanout joins group r.fanoutID, or creates one with a kernel-chosen
// unique id (PACKET_FANOUT_FLAG_UNIQUEID) and records it for the next members.
func (r *ring) joinFanout(fd int) error {
	arg := unix.PACKET_FANOUT_HASH << 16
	if r.fanoutID < 0 {
		arg |= unix.PACKET_FANOUT_FLAG_UNIQUEID << 16
	} else {
		arg |= r.fanoutID
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg); err != nil {
		return fmt.Errorf("%s: join PACKET_FANOUT group: %w — fanout needs the interface up and Linux 4.4 or later; or set fanout to 1", r.opts.name, err)
	}
	if r.fanoutID < 0 {
		v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
		if err != nil {
			return fmt.Errorf("%s: read PACKET_FANOUT group id: %w", r.opts.name, err)
		}
		r.fanoutID = v & 0xffff
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// blockStatus points at block_status of the tpacket_hdr_v1 of block i.
func (r *ring) blockStatus(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[i*r.opts.blockSize+8]))
}

// publishEvery is the longest a table goes without Publish while its
// interface is idle (maintenance, idle expiry); a snapshot request does not
// wait for it but wakes the ring (wake).
const publishEvery = 100 * time.Millisecond

// run hands every frame to sink until stop is called (returns nil), the
// interface vanishes (returns an error wrapping errIfaceGone) or the socket
// fails. It publishes after every block, when woken (wake), when idle every
// publishEvery, and, while a snapshot copy is in progress, in slices
// whenever no block is ready. exists says whether the interface is still
// there; downed is called when it went down but stays.
func (r *ring) run(sink frameSink, exists func() bool, downed func(error)) error {
	defer sink.Publish()
	part, _ := sink.(partPublisher)
	publish := func() bool {
		if part == nil {
			sink.Publish()
			return false
		}
		return part.PublishPart()
	}
	copying := false // a snapshot copy is in progress
	for !r.stopping.Load() {
		st := r.blockStatus(r.next)
		if atomic.LoadUint32(st)&unix.TP_STATUS_USER == 0 {
			if copying {
				copying = publish() // no block to hand over: copy the next slice
				continue
			}
			err := r.wait(st)
			switch {
			case err == nil:
			case errors.Is(err, os.ErrDeadlineExceeded):
				copying = publish() // woken, idle tick, or stop (checked by the loop)
			case errors.Is(err, os.ErrClosed):
				return nil
			case errors.Is(err, unix.ENETDOWN) && exists():
				downed(err) // the kernel re-hooks the socket when the interface comes back up
			case errors.Is(err, unix.ENETDOWN), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
				return fmt.Errorf("%w: %w", errIfaceGone, err)
			default:
				return fmt.Errorf("%s: capture: %w", r.opts.name, err)
			}
			continue
		}
		off := r.next * r.opts.blockSize
		r.vlan = walkBlock(r.mem[off:off+r.opts.blockSize], r.vlan, sink)
		atomic.StoreUint32(st, unix.TP_STATUS_KERNEL)
		r.next = (r.next + 1) % r.opts.numBlocks
		copying = publish()
	}
	return nil
}

// wait parks the goroutine in the netpoller until the block at st belongs to
// user space (nil), publishEvery passed or wake or stop was called
// (os.ErrDeadlineExceeded), or the socket reports an error (ENETDOWN when
// the interface goes down or is deleted).
func (r *ring) wait(st *uint32) error {
	if err := r.file.SetReadDeadline(time.Now().Add(publishEvery)); err != nil {
		return err
	}
	// Checked after the deadline is set: a wake or stop that set its past
	// deadline before ours is seen here, one that comes later overrides ours.
	if r.woken.Swap(false) || r.stopping.Load() {
		return os.ErrDeadlineExceeded
	}
	var sockErr error
	err := r.raw.Read(func(fd uintptr) bool {
		if atomic.LoadUint32(st)&unix.TP_STATUS_USER != 0 {
			return true
		}
		// Reading SO_ERROR clears it; one syscall per wakeup, not per frame.
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			sockErr = err
		} else if v != 0 {
			sockErr = syscall.Errno(v)
		}
		return sockErr != nil
	})
	if err != nil {
		return err
	}
	return sockErr
}

// stop makes run return soon; safe to call from any goroutine, more than once.
func (r *ring) stop() {
	r.stopping.Store(true)
	_ = r.file.SetReadDeadline(time.Unix(1, 0)) // wakes a waiting run; else wait sees stopping
}

// wake makes run publish now (a snapshot request, see flowagg.IfaceTable.SetWaker)
// instead of at its next poll timeout; safe to call from any goroutine, and
// harmless after close. A past read deadline unparks the goroutine waiting
// in the runtime netpoller, without a syscall: the socket stays the only
// file the ring waits on, so no OS thread blocks in poll(2) as it would
// with a wake-up eventfd polled next to the socket. The flag covers a wait
// that sets its own deadline just after ours.
func (r *ring) wake() {
	r.woken.Store(true)
	_ = r.file.SetReadDeadline(time.Unix(1, 0))
}

// stats reads the kernel counters (which reset on read) into the running totals
// and returns them. After close it returns the last totals.
func (r *ring) stats() IfaceStats {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	if r.raw == nil {
		return r.totals
	}
	var s *unix.TpacketStatsV3
	var err error
	if cerr := r.raw.Control(func(fd uintptr) {
		s, err = unix.GetsockoptTpacketStatsV3(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	}); cerr != nil || err != nil {
		return r.totals
	}
	// tp_packets already includes tp_drops (af_packet.c adds them).
	r.totals.Packets += uint64(s.Packets)
	r.totals.Drops += uint64(s.Drops)
	r.totals.FreezeQueue += uint64(s.Freeze_q_cnt)
	return r.totals
}

// close reads the last statistics, unmaps the ring and closes the socket. Call
// it after run has returned. fd is used when openRing failed before the file existed.
func (r *ring) close(fd int) {
	if r.file != nil {
		r.stats()
		r.statsMu.Lock()
		_ = r.file.Close()
		r.statsMu.Unlock()
	} else if fd >= 0 {
		_ = unix.Close(fd)
	}
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
}

// Layout of a TPACKET_V3 block and frame (linux/if_packet.h).
const (
	blockNumPktsOff  = 8 + 4  // tpacket_block_desc.hdr.bh1.num_pkts
	blockFirstPktOff = 8 + 8  // .offset_to_first_pkt
	blockLenOff      = 8 + 12 // .blk_len
	// sockaddr_ll follows the tpacket3_hdr at TPACKET_ALIGN(sizeof(tpacket3_hdr)).
	sllOff = (unix.SizeofTpacket3Hdr + unix.TPACKET_ALIGNMENT - 1) &^ (unix.TPACKET_ALIGNMENT - 1)
)

// walkBlock hands each frame of one user-owned block to sink and returns the
// VLAN scratch buffer (frames whose tag the kernel moved into the header get it
// put back, as tcpdump shows them). It trusts nothing in the block beyond its bounds.
func walkBlock(blk []byte, vlan []byte, sink frameSink) []byte {
	n := *(*uint32)(unsafe.Pointer(&blk[blockNumPktsOff]))
	off := int(*(*uint32)(unsafe.Pointer(&blk[blockFirstPktOff])))
	end := min(int(*(*uint32)(unsafe.Pointer(&blk[blockLenOff]))), len(blk))
	for range n {
		if off <= 0 || off+sllOff+unix.SizeofSockaddrLinklayer > end {
			return vlan
		}
		h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&blk[off]))
		ll := (*unix.RawSockaddrLinklayer)(unsafe.Pointer(&blk[off+sllOff]))
		start := off + int(h.Mac)
		stop := start + int(h.Snaplen)
		if start < off+sllOff || stop > end {
			return vlan
		}
		frame, wireLen := blk[start:stop:stop], int(h.Len)
		if h.Status&unix.TP_STATUS_VLAN_VALID != 0 && len(frame) >= 12 {
			tpid := uint16(unix.ETH_P_8021Q)
			if h.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				tpid = h.Hv1.Vlan_tpid
			}
			tci := uint16(h.Hv1.Vlan_tci)
			vlan = append(append(append(vlan[:0], frame[:12]...), byte(tpid>>8), byte(tpid), byte(tci>>8), byte(tci)), frame[12:]...)
			frame, wireLen = vlan, wireLen+4
		}
		dir := decoder.DirIn
		if ll.Pkttype == unix.PACKET_OUTGOING {
			dir = decoder.DirOut
		}
		sink.Add(frame, wireLen, dir, time.Unix(int64(h.Sec), int64(h.Nsec)))
		if h.Next_offset == 0 {
			return vlan
		}
		off += int(h.Next_offset)
	}
	return vlan
}
