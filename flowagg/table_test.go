package flowagg

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/flowagg/decoder"
	"github.com/tangfeixiong/nta/internal/frametest"
)

func TestBudgetFloodKeepsLargestAndExactSums(t *testing.T) {
	const limit = 1000
	_, tb := testTable(Config{MaxFlowsPerInterface: limit, MaxFlowsTotal: 1 << 20})
	g := frametest.NewGen(t, 100)
	buf := make([]byte, 0, 256)
	// 20 elephants sending bursts of 5 packets, interleaved with a flood of
	// 1-packet random 5-tuples that is 100x the budget.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100*limit; i++ {
		f := g.Frame(buf, rng.Uint32(), rng.Uint32(), uint16(rng.UintN(65536)), uint16(rng.UintN(65536)))
		tb.Add(f, len(f), decoder.DirIn, t0)
		if i%2000 == 0 {
			for e := uint32(0); e < 20*5; e++ {
				f := g.Frame(buf, 0x0a000001, 0x0a000100+e%20, 40000, 443)
				tb.Add(f, len(f), decoder.DirOut, t0)
			}
		}
		if tb.Len() > limit {
			t.Fatalf("table has %d flows, budget %d", tb.Len(), limit)
		}
	}
	s := tb.PublishSnapshot()
	checkSums(t, s)
	if len(s.Flows) > limit {
		t.Fatalf("%d flows exported, budget %d", len(s.Flows), limit)
	}
	if s.Folded == 0 || s.Overflow[decoder.DirIn].Packets == 0 {
		t.Fatalf("flood of %d flows folded nothing: %+v", 100*limit, s.Overflow)
	}
	if s.Evicted != 0 {
		t.Errorf("evicted %d, want 0 (the per-interface limit was the binding one)", s.Evicted)
	}
	for e := uint32(0); e < 20; e++ {
		k := frametest.Key4("10.0.0.1", "10.0.1."+itoa(int(e)), 40000, 443, 6, decoder.DirOut)
		f, ok := flowOf(s, k)
		if !ok || f.Packets != 250 {
			t.Errorf("elephant %d: %+v found=%v, want its own series with all 250 packets", e, f, ok)
		}
	}
	// every folded flow's traffic is in the overflow series
	if got := uint64(len(s.Flows)) + s.Folded + s.Evicted; got != uint64(100*limit+20) {
		t.Errorf("flows %d + folded %d = %d, want %d distinct flows", len(s.Flows), s.Folded, got, 100*limit+20)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestTotalBudgetSharedAndEvicted(t *testing.T) {
	a := NewAggregator(Config{MaxFlowsPerInterface: 1000, MaxFlowsTotal: 1000})
	t1 := a.Interface("eth0")
	g := frametest.NewGen(t, 0)
	buf := make([]byte, 0, 128)
	for i := uint32(0); i < 900; i++ {
		f := g.Frame(buf, i, 1, 1000, 80)
		t1.Add(f, len(f), decoder.DirIn, t0)
	}
	if t1.Len() != 900 {
		t.Fatalf("eth0 has %d flows, want 900", t1.Len())
	}
	t2 := a.Interface("eth1") // shares drop to 500 each
	for i := uint32(0); i < 900; i++ {
		f := g.Frame(buf, i, 2, 1000, 80)
		t2.Add(f, len(f), decoder.DirIn, t0)
	}
	s1, s2 := t1.PublishSnapshot(), t2.PublishSnapshot()
	checkSums(t, s1)
	checkSums(t, s2)
	if len(s1.Flows)+len(s2.Flows) > 1000 || len(s1.Flows) > 500 || len(s2.Flows) > 500 {
		t.Fatalf("flows %d + %d exceed the total budget 1000 (500 each)", len(s1.Flows), len(s2.Flows))
	}
	if s1.Evicted == 0 || s2.Evicted == 0 || s1.Folded != 0 {
		t.Fatalf("evicted %d/%d folded %d: the total-budget share must count as evicted", s1.Evicted, s2.Evicted, s1.Folded)
	}
	a.Release("eth1")
	if got, _ := t1.limits(); got != 1000 {
		t.Fatalf("after release the remaining interface's limit is %d, want 1000", got)
	}
}

func TestGranularity(t *testing.T) {
	cases := []struct {
		g    Granularity
		want []decoder.FlowKey
	}{
		{GranularityFull, []decoder.FlowKey{
			frametest.Key4("10.0.0.1", "10.0.0.2", 40001, 80, 6, decoder.DirIn), frametest.Key4("10.0.0.1", "10.0.0.2", 40002, 80, 6, decoder.DirIn),
			frametest.Key4("10.0.0.2", "10.0.0.1", 80, 40001, 6, decoder.DirIn), frametest.Key4("10.0.0.1", "10.0.0.2", 5000, 6000, 6, decoder.DirIn)}},
		{GranularityHostPair, []decoder.FlowKey{
			frametest.Key4("10.0.0.1", "10.0.0.2", 0, 0, 6, decoder.DirIn), frametest.Key4("10.0.0.2", "10.0.0.1", 0, 0, 6, decoder.DirIn)}},
		{GranularityServerPort, []decoder.FlowKey{
			{Src: frametest.Addr16("10.0.0.1"), Dst: frametest.Addr16("10.0.0.2"), DstPort: 80, Proto: 6, Family: 4, Flags: decoder.FlagSrcPortFolded},
			{Src: frametest.Addr16("10.0.0.2"), Dst: frametest.Addr16("10.0.0.1"), SrcPort: 80, Proto: 6, Family: 4, Flags: decoder.FlagDstPortFolded},
			{Src: frametest.Addr16("10.0.0.1"), Dst: frametest.Addr16("10.0.0.2"), SrcPort: 5000, Proto: 6, Family: 4, Flags: decoder.FlagDstPortFolded}}},
	}
	for _, c := range cases {
		_, tb := testTable(Config{Granularity: c.g})
		for _, f := range [][]byte{
			frametest.TCP4Frame(t, "10.0.0.1", "10.0.0.2", 40001, 80, 0),
			frametest.TCP4Frame(t, "10.0.0.1", "10.0.0.2", 40002, 80, 0),
			frametest.TCP4Frame(t, "10.0.0.2", "10.0.0.1", 80, 40001, 0),
			frametest.TCP4Frame(t, "10.0.0.1", "10.0.0.2", 5000, 6000, 0),
		} {
			tb.Add(f, len(f), decoder.DirIn, t0)
		}
		s := tb.PublishSnapshot()
		checkSums(t, s)
		if len(s.Flows) != len(c.want) {
			t.Errorf("%s: %d flows, want %d: %+v", c.g, len(s.Flows), len(c.want), s.Flows)
		}
		for _, k := range c.want {
			if _, ok := flowOf(s, k); !ok {
				t.Errorf("%s: flow %s missing", c.g, &k)
			}
		}
	}
	for _, name := range []string{"5tuple", "host", "workload", "port"} {
		if g, err := ParseGranularity(name); err != nil || g.String() != name {
			t.Errorf("ParseGranularity(%q) = %v, %v", name, g, err)
		}
	}
	if _, err := ParseGranularity("bogus"); err == nil {
		t.Error("ParseGranularity(bogus) succeeded")
	}
}

func TestExpiryAndMemoryReturns(t *testing.T) {
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	const flood = 300000
	_, tb := testTable(Config{MaxFlowsPerInterface: 2 * flood, MaxFlowsTotal: 2 * flood, IdleTimeout: time.Minute})
	g := frametest.NewGen(t, 0)
	buf := make([]byte, 0, 128)
	keep := g.Frame(nil, 0x0a000001, 0x0a000002, 1234, 22)
	tb.Add(keep, len(keep), decoder.DirIn, t0)
	before := heap()
	for i := uint32(0); i < flood; i++ {
		f := g.Frame(buf, 0xc0000000+i, 0x0a000002, 40000, 80)
		tb.Add(f, len(f), decoder.DirIn, t0)
	}
	during := heap()
	if tb.Len() != flood+1 {
		t.Fatalf("%d flows after the flood, want %d", tb.Len(), flood+1)
	}
	// two minutes later only the long-lived flow is still active
	later := t0.Add(2 * time.Minute)
	tb.Add(keep, len(keep), decoder.DirIn, later)
	tb.publishAt(later.UnixNano(), true)
	s := tb.Published()
	checkSums(t, s)
	if len(s.Flows) != 1 || s.Expiries != flood {
		t.Fatalf("after expiry %d flows, %d expired; want 1 and %d", len(s.Flows), s.Expiries, flood)
	}
	s = nil
	after := heap()
	t.Logf("HeapInuse before %d MiB, during flood %d MiB, after expiry %d MiB",
		before>>20, during>>20, after>>20)
	if during < before+10<<20 {
		t.Fatalf("the flood did not grow the heap (%d -> %d): test is not measuring anything", before, during)
	}
	if after > before+2<<20 {
		t.Fatalf("heap in use %d MiB after expiry, %d MiB before the flood: memory not returned", after>>20, before>>20)
	}
}

func TestShardsMergeAtExport(t *testing.T) {
	a := NewAggregator(Config{MaxFlowsPerInterface: 100, SnapshotWait: time.Millisecond})
	s0, s1 := a.Shard("eth0", 0), a.Shard("eth0", 1)
	l0, _ := s0.limits()
	l1, _ := s1.limits()
	if l0 != 50 || l1 != 50 {
		t.Fatalf("shard limits %d/%d, want 50 each", l0, l1)
	}
	f := frametest.TCP4Frame(t, "10.0.0.1", "10.0.0.2", 1, 2, 0)
	s0.Add(f, len(f), decoder.DirIn, t0)
	s1.Add(f, len(f), decoder.DirIn, t0)
	arpf := frametest.ARPFrame(t, 2, frametest.MACA, "10.0.0.9")
	s1.Add(arpf, len(arpf), decoder.DirIn, t0)
	s0.PublishSnapshot()
	s1.PublishSnapshot()
	snaps := a.Snapshots(context.Background())
	if len(snaps) != 1 || snaps[0].Shards != 2 {
		t.Fatalf("got %d snapshots, want 1 merged from 2 shards", len(snaps))
	}
	m := snaps[0]
	checkSums(t, m)
	if len(m.Flows) != 1 || m.Flows[0].Packets != 2 || len(m.ARPBindings) != 1 {
		t.Fatalf("merged: %+v", m)
	}
	a.Release("eth0")
	if len(a.Snapshots(context.Background())) != 0 {
		t.Fatal("released interface still exported")
	}
}

// TestScrapeWhileCapturing runs a capture loop and concurrent scrapes (run
// with -race): every scrape gets a consistent snapshot and the capture loop
// never waits for a scrape.
func TestScrapeWhileCapturing(t *testing.T) {
	a := NewAggregator(Config{MaxFlowsPerInterface: 5000, SnapshotWait: time.Second})
	tb := a.Interface("eth0")
	g := frametest.NewGen(t, 10)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var maxPublish time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 0, 128)
		for i := uint32(0); ; i++ {
			f := g.Frame(buf, i%3000, 7, 1000, 80)
			tb.Add(f, len(f), decoder.DirIn, time.Now())
			if i%256 == 0 {
				start := time.Now()
				tb.Publish()
				maxPublish = max(maxPublish, time.Since(start))
				select {
				case <-stop:
					return
				default:
				}
			}
		}
	}()
	var last uint64
	for i := 0; i < 20; i++ {
		snaps := a.Snapshots(context.Background())
		if len(snaps) != 1 {
			t.Fatalf("scrape %d: %d snapshots", i, len(snaps))
		}
		// copied while packets arrive: flows may lag the totals a little
		if sum := snaps[0].FlowSum(); sum.Packets > snaps[0].Total.Packets {
			t.Fatalf("scrape %d: flows sum to %d packets, more than the total %d", i, sum.Packets, snaps[0].Total.Packets)
		}
		if snaps[0].Total.Packets < last {
			t.Fatalf("scrape %d: total went back from %d to %d", i, last, snaps[0].Total.Packets)
		}
		last = snaps[0].Total.Packets
	}
	close(stop)
	wg.Wait()
	t.Logf("longest Publish (includes copying up to 3000 flows): %s", maxPublish)
}

// TestChunkedSnapshot: with packets arriving, a snapshot of 100k flows is
// copied over several Publish calls, each short, and is complete.
func TestChunkedSnapshot(t *testing.T) {
	const flows = 100_000
	a := NewAggregator(Config{MaxFlowsPerInterface: 2 * flows, MaxFlowsTotal: 2 * flows, IdleTimeout: -1})
	tb := a.Interface("eth0")
	frames := frametest.Arena(t, flows)
	now := time.Now()
	for _, f := range frames {
		tb.Add(f, 64, decoder.DirIn, now)
	}
	tb.Publish() // idle mark
	done := tb.requestSnapshot()
	calls := 0
	var longest time.Duration
	var took []time.Duration
	for i := 0; ; i++ {
		for j := range 100 { // a ring block's worth of packets between Publish calls
			tb.Add(frames[(i*100+j)%flows], 64, decoder.DirIn, now)
		}
		start := time.Now()
		tb.Publish()
		longest = max(longest, time.Since(start))
		took = append(took, time.Since(start))
		calls++
		select {
		case <-done:
		default:
			if calls > 10000 {
				t.Fatal("snapshot never completed")
			}
			continue
		}
		break
	}
	s := tb.Published()
	slices.Sort(took)
	t.Logf("100k-flow snapshot copied over %d Publish calls: median %s, longest %s", calls, took[len(took)/2], longest)
	if len(s.Flows) != flows {
		t.Fatalf("snapshot has %d flows, want %d", len(s.Flows), flows)
	}
	if calls < 2 {
		t.Errorf("copied in %d call: expected several slices while packets arrive", calls)
	}
	if sum := s.FlowSum(); sum.Packets > s.Total.Packets || s.Total.Packets-sum.Packets > uint64(100*calls) {
		t.Errorf("flows sum to %d packets, total %d: skew beyond the packets added during the copy", sum.Packets, s.Total.Packets)
	}
	seen := make(map[decoder.FlowKey]bool, flows)
	for _, f := range s.Flows {
		if seen[f.Key] {
			t.Fatalf("flow %s twice in the snapshot", &f.Key)
		}
		seen[f.Key] = true
	}
}
