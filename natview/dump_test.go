//go:build linux

package natview

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"
)

// fakeDump answers a dump request with entries, checking it is a plain
// IPCTNL_MSG_CT_GET dump (never the counter-zeroing GET_CTRZERO), in
// datagrams of perDgram messages as the kernel packs them; the last
// message is NLMSG_DONE carrying errno (0: the dump is complete).
func fakeDump(t *testing.T, entries []netlink.Message, perDgram int, errno int32) *dumper {
	t.Helper()
	c := nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) != 1 || req[0].Header.Type != netlink.HeaderType(1<<8|ctGet) || req[0].Header.Flags&netlink.Dump != netlink.Dump {
			t.Errorf("request %+v, want a ctnetlink GET dump", req)
		}
		return nil, nil
	})
	done := netlink.Message{Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi}, Data: binary.NativeEndian.AppendUint32(nil, uint32(errno))}
	msgs := append(append([]netlink.Message(nil), entries...), done)
	var dgrams [][]byte
	for len(msgs) > 0 {
		k := min(perDgram, len(msgs))
		var dg []byte
		for _, m := range msgs[:k] {
			m.Header.Flags |= netlink.Multi
			m.Header.Length = uint32(nlmsgHeaderLen+len(m.Data)+3) &^ 3 // MarshalBinary wants it aligned
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			dg = append(dg, b...)
		}
		dgrams = append(dgrams, dg)
		msgs = msgs[k:]
	}
	return &dumper{c: c, read: func(buf []byte) (int, error) {
		if len(dgrams) == 0 {
			t.Error("read past the end of the dump")
			return 0, unix.EBADF
		}
		n := copy(buf, dgrams[0])
		dgrams = dgrams[1:]
		return n, nil
	}}
}

func dumpEntries(t *testing.T, n int) []netlink.Message {
	t.Helper()
	out := make([]netlink.Message, n)
	for i := range out {
		out[i] = ctMessage(t, uint32(i+1), uint32(dnat),
			tuple(protoTCP, []byte{198, 18, 0, 2}, []byte{198, 18, 0, 1}, false, uint16(1000+i), 8080, false),
			tuple(protoTCP, []byte{172, 17, 0, 2}, []byte{198, 18, 0, 2}, false, 80, uint16(1000+i), false), [2]uint64{1, 60}, [2]uint64{0, 0})
	}
	return out
}

// Every entry of a dump spanning several datagrams arrives once, in order,
// one apply per datagram that holds entries, more datagrams than the
// receiving goroutine has buffers.
func TestDumpStreamsEveryEntryByDatagram(t *testing.T) {
	const n, per = 3000, 100 // 31 datagrams, the DONE in the last
	d := fakeDump(t, dumpEntries(t, n), per, 0)
	var ids []uint32
	calls := 0
	if err := d.dump(statusFilter{}, func(batch []conntrack.Flow) {
		calls++
		for i := range batch {
			ids = append(ids, batch[i].ID)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(ids) != n || calls != n/per {
		t.Fatalf("%d entries in %d applies, want %d in %d", len(ids), calls, n, n/per)
	}
	for i, id := range ids {
		if id != uint32(i+1) {
			t.Fatalf("entry %d has id %d", i, id)
		}
	}
}

// A malformed entry fails the dump (the watcher re-dials) without hanging
// the receiving goroutine; the rest of the dump is read off the socket.
func TestDumpFailsOnAMalformedEntry(t *testing.T) {
	entries := dumpEntries(t, 3000)
	entries[1005].Data = []byte{2, 0, 0, 0, 8, 0, 1, 0, 1, 2}
	d := fakeDump(t, entries, 100, 0)
	done := make(chan error, 1)
	applied := 0
	go func() { done <- d.dump(statusFilter{}, func(b []conntrack.Flow) { applied += len(b) }) }()
	select {
	case err := <-done:
		if err == nil || applied != 1000 {
			t.Fatalf("err %v after %d applied, want an error after the first 1000", err, applied)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dump hung on a malformed entry")
	}
}

// The kernel's refusal, in NLMSG_DONE or NLMSG_ERROR, is the dump's error.
func TestDumpReturnsTheKernelsError(t *testing.T) {
	d := fakeDump(t, dumpEntries(t, 5), 100, errnoOf(unix.EPERM))
	if err := d.dump(statusFilter{}, func([]conntrack.Flow) {}); !errors.Is(err, unix.EPERM) {
		t.Errorf("DONE with -EPERM: err %v", err)
	}
	nlerr := netlink.Message{Header: netlink.Header{Type: netlink.Error}, Data: binary.NativeEndian.AppendUint32(nil, uint32(errnoOf(unix.EINVAL)))}
	d = fakeDump(t, []netlink.Message{nlerr}, 100, 0)
	if err := d.dump(statusFilter{}, func([]conntrack.Flow) {}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("NLMSG_ERROR -EINVAL: err %v", err)
	}
}

// A filtered dump asks the kernel for status & mask == value, big-endian,
// as CTA_STATUS and CTA_STATUS_MASK; an unfiltered one carries neither.
func TestDumpRequestCarriesTheStatusFilter(t *testing.T) {
	for _, sf := range append(natFilters[:], statusFilter{}) {
		got := map[uint16]uint32{}
		d := fakeDump(t, nil, 1, 0)
		d.c = nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
			if err := attrs(req[0].Data[nfgenmsgSize:], func(typ uint16, v []byte) error {
				got[typ] = binary.BigEndian.Uint32(v)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return nil, nil
		})
		if err := d.dump(sf, func([]conntrack.Flow) {}); err != nil {
			t.Fatal(err)
		}
		want := map[uint16]uint32{}
		if sf.mask != 0 {
			want = map[uint16]uint32{ctaStatus: uint32(sf.value), ctaStatusMask: uint32(sf.mask)}
		}
		if len(got) != len(want) || got[ctaStatus] != want[ctaStatus] || got[ctaStatusMask] != want[ctaStatusMask] {
			t.Errorf("filter %+v: request attributes %v, want %v", sf, got, want)
		}
	}
	// The two filters list every NAT'd entry exactly once.
	for _, st := range []conntrack.Status{dnat, snat, dnat | snat, 0} {
		n := 0
		for _, sf := range natFilters {
			if sf.matches(st) {
				n++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[st&(dnat|snat) != 0]; n != want {
			t.Errorf("status %v matched by %d filters, want %d", st, n, want)
		}
	}
}

// errnoOf is the kernel's negative errno of e, as netlink carries it.
func errnoOf(e unix.Errno) int32 { return -int32(e) }

// A dumper that failed refuses the next dump instead of reading the rest
// of the failed one as its answer.
func TestDumpAfterAFailureAsksForANewSocket(t *testing.T) {
	entries := dumpEntries(t, 300)
	entries[150].Data = []byte{2, 0, 0, 0, 8, 0, 1, 0, 1, 2}
	d := fakeDump(t, entries, 100, 0)
	if err := d.dump(statusFilter{}, func([]conntrack.Flow) {}); err == nil {
		t.Fatal("malformed entry: no error")
	}
	if err := d.dump(statusFilter{}, func([]conntrack.Flow) { t.Error("applied entries on a broken socket") }); err == nil || !strings.Contains(err.Error(), "dial a new one") {
		t.Errorf("second dump: err %v", err)
	}
}
