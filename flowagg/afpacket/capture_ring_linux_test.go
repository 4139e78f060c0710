//go:build linux

package afpacket

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
)

type sinkFrame struct {
	frame   []byte
	wireLen int
	dir     decoder.Direction
	ts      time.Time
}

type recordSink struct {
	frames    []sinkFrame
	published int
}

func (s *recordSink) Add(frame []byte, wireLen int, dir decoder.Direction, ts time.Time) {
	s.frames = append(s.frames, sinkFrame{bytes.Clone(frame), wireLen, dir, ts})
}
func (s *recordSink) Publish() { s.published++ }

type blockFrame struct {
	data     []byte
	wireLen  uint32
	pkttype  uint8
	vlanTCI  uint16 // 0: none
	sec      uint32
	nsec     uint32
	badOffst bool
}

// makeBlock lays frames out the way af_packet.c fills a TPACKET_V3 block.
func makeBlock(size int, frames []blockFrame) []byte {
	le := binary.LittleEndian
	blk := make([]byte, size)
	const first = 48 // BLK_PLUS_PRIV(0): aligned tpacket_block_desc
	off := first
	le.PutUint32(blk[8:], unix.TP_STATUS_USER)
	le.PutUint32(blk[12:], uint32(len(frames)))
	le.PutUint32(blk[16:], first)
	for i, f := range frames {
		const mac = 82 // TPACKET_ALIGN(68 + 16) - 14, as the kernel computes for Ethernet
		h := blk[off:]
		next := (mac + len(f.data) + 15) &^ 15
		if i == len(frames)-1 {
			next = 0
		}
		if f.badOffst {
			next = size * 2
		}
		le.PutUint32(h[0:], uint32(next))
		le.PutUint32(h[4:], f.sec)
		le.PutUint32(h[8:], f.nsec)
		le.PutUint32(h[12:], uint32(len(f.data)))
		le.PutUint32(h[16:], f.wireLen)
		status := uint32(unix.TP_STATUS_USER)
		if f.vlanTCI != 0 {
			status |= unix.TP_STATUS_VLAN_VALID | unix.TP_STATUS_VLAN_TPID_VALID
			le.PutUint32(h[32:], uint32(f.vlanTCI)) // hv1.tp_vlan_tci (after tp_rxhash)
			le.PutUint16(h[36:], 0x88a8)
		}
		le.PutUint32(h[20:], status)
		le.PutUint16(h[24:], mac)
		h[48+10] = f.pkttype // sockaddr_ll.sll_pkttype
		copy(h[mac:], f.data)
		off += (mac + len(f.data) + 15) &^ 15
	}
	le.PutUint32(blk[20:], uint32(off))
	return blk
}

func TestWalkBlock(t *testing.T) {
	a, b, c := testFrame(17, 60), testFrame(6, 200), testFrame(17, 100)
	blk := makeBlock(4096, []blockFrame{
		{data: a, wireLen: 60, pkttype: unix.PACKET_HOST, sec: 1700000000, nsec: 5},
		{data: b[:128], wireLen: 200, pkttype: unix.PACKET_OUTGOING, sec: 1700000001},
		{data: c, wireLen: 100, pkttype: unix.PACKET_OTHERHOST, vlanTCI: 0x2064},
	})
	var s recordSink
	walkBlock(blk, nil, &s)
	if len(s.frames) != 3 {
		t.Fatalf("got %d frames, want 3", len(s.frames))
	}
	if f := s.frames[0]; !bytes.Equal(f.frame, a) || f.wireLen != 60 || f.dir != decoder.DirIn || !f.ts.Equal(time.Unix(1700000000, 5)) {
		t.Errorf("frame 0 = %d bytes, wire %d, dir %v, ts %v", len(f.frame), f.wireLen, f.dir, f.ts)
	}
	if f := s.frames[1]; !bytes.Equal(f.frame, b[:128]) || f.wireLen != 200 || f.dir != decoder.DirOut {
		t.Errorf("frame 1 (outgoing, snapped) = %d bytes, wire %d, dir %v", len(f.frame), f.wireLen, f.dir)
	}
	f := s.frames[2]
	want := append(append(bytes.Clone(c[:12]), 0x88, 0xa8, 0x20, 0x64), c[12:]...)
	if !bytes.Equal(f.frame, want) || f.wireLen != 104 || f.dir != decoder.DirIn {
		t.Errorf("VLAN frame = % x (wire %d), want tag 88a8 2064 put back (wire 104)", f.frame[:20], f.wireLen)
	}
}

func TestWalkBlockCorrupt(t *testing.T) {
	a := testFrame(17, 60)
	blk := makeBlock(4096, []blockFrame{
		{data: a, wireLen: 60, badOffst: true},
		{data: a, wireLen: 60},
	})
	var s recordSink
	walkBlock(blk, nil, &s)
	if len(s.frames) != 1 {
		t.Errorf("got %d frames from a block whose next offset points outside, want 1 and no panic", len(s.frames))
	}
	blk = makeBlock(4096, []blockFrame{{data: a, wireLen: 60}})
	binary.LittleEndian.PutUint32(blk[12:], 1000) // num_pkts lies
	s = recordSink{}
	walkBlock(blk, nil, &s)
	if len(s.frames) != 1 {
		t.Errorf("got %d frames, want 1", len(s.frames))
	}
	binary.LittleEndian.PutUint32(blk[16:], 4090) // first packet offset at the end
	s = recordSink{}
	walkBlock(blk, nil, &s)
	if len(s.frames) != 0 {
		t.Errorf("got %d frames, want 0", len(s.frames))
	}
}

// TestOpenRingPermission drops CAP_NET_RAW from the effective set of one
// thread (capabilities are per thread) and checks the error says what to do.
func TestOpenRingPermission(t *testing.T) {
	requirePrivileged(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps, dropped [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		t.Fatal(err)
	}
	dropped = caps
	dropped[0].Effective &^= 1 << unix.CAP_NET_RAW
	if err := unix.Capset(&hdr, &dropped[0]); err != nil {
		t.Fatal(err)
	}
	_, err := openRing(ringOptions{name: "lo", ifindex: 1, blockSize: 1 << 16, numBlocks: 2, blockTimeout: time.Millisecond})
	if err := unix.Capset(&hdr, &caps[0]); err != nil {
		t.Fatalf("restore capabilities: %v", err) // the locked thread dies with the test goroutine
	}
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "CAP_NET_RAW") {
		t.Errorf("openRing without CAP_NET_RAW: %v; want a permission error naming CAP_NET_RAW", err)
	}
}

// BenchmarkWalkBlock measures the per-frame cost of walking a block into a
// real flow table (decode and aggregation included), 4000 flows.
func BenchmarkWalkBlock(b *testing.B) {
	var frames []blockFrame
	for i := range 1700 {
		frames = append(frames, blockFrame{data: l4Frame(17, uint16(1024+i%4000), 9, 60), wireLen: 60})
	}
	var blocks [][]byte
	for i := range 3 { // rotate source ports so all 4000 flows get hit
		for j := range frames {
			frames[j].data = l4Frame(17, uint16(1024+(i*1700+j)%4000), 9, 60)
		}
		blocks = append(blocks, makeBlock(256<<10, frames))
	}
	table := flowagg.NewAggregator(flowagg.Config{}).Interface("bench")
	var vlan []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		vlan = walkBlock(blocks[i%len(blocks)], vlan, table)
		table.Publish()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frames)), "ns/frame")
}
