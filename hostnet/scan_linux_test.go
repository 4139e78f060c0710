//go:build linux

package hostnet

import (
	"context"
	"maps"
	"sync/atomic"
	"testing"
)

func TestNsidCache(t *testing.T) {
	s := NewScanner(Options{})
	s.storeNsid(100, 200, 0)
	s.storeNsid(100, 300, 1)
	s.storeNsid(200, 100, 0)
	inoToID := map[uint64]string{100: "host", 200: "named:a", 300: "ino:300"}
	if got, want := s.cachedNsids(100, inoToID), map[int]string{0: "named:a", 1: "ino:300"}; !maps.Equal(got, want) {
		t.Errorf("cachedNsids(100) = %v, want %v", got, want)
	}
	// A target missing from this scan is not offered.
	if got := s.cachedNsids(100, map[uint64]string{100: "host", 200: "named:a"}); !maps.Equal(got, map[int]string{0: "named:a"}) {
		t.Errorf("cachedNsids with 300 gone = %v", got)
	}
	// Two targets claiming one nsid (inode reuse): both dropped and forgotten.
	s.storeNsid(100, 400, 1)
	inoToID[400] = "ino:400"
	if got := s.cachedNsids(100, inoToID); !maps.Equal(got, map[int]string{0: "named:a"}) {
		t.Errorf("conflicting nsid 1 kept: %v", got)
	}
	if _, ok := s.nsids[100][300]; ok {
		t.Error("conflicting entry not evicted")
	}
	// Eviction of vanished viewers and targets.
	s.evictNsids(map[uint64]bool{100: true, 300: true})
	if len(s.nsids) != 1 || len(s.nsids[100]) != 0 {
		t.Errorf("after evict: %v", s.nsids)
	}
}

func TestParallel(t *testing.T) {
	var seen [100]atomic.Int32
	parallel(context.Background(), len(seen), 4, func(i int) { seen[i].Add(1) })
	for i := range seen {
		if n := seen[i].Load(); n != 1 {
			t.Fatalf("item %d ran %d times", i, n)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ran atomic.Int32
	parallel(ctx, 10, 2, func(int) { ran.Add(1) })
	if ran.Load() != 0 {
		t.Errorf("%d items ran after cancel", ran.Load())
	}
	parallel(context.Background(), 0, 4, func(int) { t.Error("ran with n=0") })
}

func TestScanCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewScanner(Options{}).Scan(ctx); err == nil {
		t.Error("cancelled scan returned no error")
	}
}

// TestScanOwnNamespace needs no privilege: the scanner's own namespace is
// read without entering it.
func TestScanOwnNamespace(t *testing.T) {
	snap, err := NewScanner(Options{NetnsDirs: []string{}}).Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Namespaces[0].ID != HostID {
		t.Fatalf("first namespace %+v", snap.Namespaces[0])
	}
	for _, e := range snap.Errors {
		t.Logf("recorded: %v", e)
	}
	t.Logf("%d namespaces, %d links", len(snap.Namespaces), len(snap.Links))
	lo, ok := snap.Link(HostID, "lo")
	if !ok || lo.Kind != "loopback" || lo.Index != 1 {
		t.Errorf("host lo = %+v, %v", lo, ok)
	}
}
