//go:build linux

package natview

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"github.com/ti-mo/conntrack"
)

// fakeDump answers a dump request with entries, checking it is a plain
// IPCTNL_MSG_CT_GET dump (never the counter-zeroing GET_CTRZERO).
func fakeDump(t *testing.T, entries []netlink.Message) *dumper {
	t.Helper()
	return &dumper{c: nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) != 1 || req[0].Header.Type != netlink.HeaderType(1<<8|ctGet) || req[0].Header.Flags&netlink.Dump != netlink.Dump {
			t.Errorf("request %+v, want a ctnetlink GET dump", req)
		}
		// Multipart makes the last message the kernel's NLMSG_DONE (errno 0).
		return nltest.Multipart(append(entries, netlink.Message{Data: make([]byte, 4)}))
	})}
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

// Every entry of a dump spanning several batches arrives once, in order.
func TestDumpStreamsEveryEntryInBatches(t *testing.T) {
	const n = 2*dumpBatch + 17
	d := fakeDump(t, dumpEntries(t, n))
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
	if len(ids) != n || calls != 3 {
		t.Fatalf("%d entries in %d batches, want %d in 3", len(ids), calls, n)
	}
	for i, id := range ids {
		if id != uint32(i+1) {
			t.Fatalf("entry %d has id %d", i, id)
		}
	}
}

// A malformed entry fails the dump (the watcher re-dials) without hanging
// the receiving goroutine.
func TestDumpFailsOnAMalformedEntry(t *testing.T) {
	entries := dumpEntries(t, 3*dumpBatch)
	entries[dumpBatch+5].Data = []byte{2, 0, 0, 0, 8, 0, 1, 0, 1, 2}
	d := fakeDump(t, entries)
	done := make(chan error, 1)
	applied := 0
	go func() { done <- d.dump(statusFilter{}, func(b []conntrack.Flow) { applied += len(b) }) }()
	select {
	case err := <-done:
		if err == nil || applied != dumpBatch {
			t.Fatalf("err %v after %d applied, want an error after the first batch", err, applied)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dump hung on a malformed entry")
	}
}

// A filtered dump asks the kernel for status & mask == value, big-endian,
// as CTA_STATUS and CTA_STATUS_MASK; an unfiltered one carries neither.
func TestDumpRequestCarriesTheStatusFilter(t *testing.T) {
	for _, sf := range append(natFilters[:], statusFilter{}) {
		got := map[uint16]uint32{}
		d := &dumper{c: nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
			if err := attrs(req[0].Data[nfgenmsgSize:], func(typ uint16, v []byte) error {
				got[typ] = binary.BigEndian.Uint32(v)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return nltest.Multipart([]netlink.Message{{Data: make([]byte, 4)}, {Data: make([]byte, 4)}})
		})}
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
