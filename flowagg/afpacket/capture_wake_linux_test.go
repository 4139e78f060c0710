//go:build linux

package afpacket

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
	"github.com/tangfeixiong/nta/internal/frametest"
)

// newWakeVeth is newVeth with names of its own (ntwk…), so that these tests
// never meet another test's links or namespaces on a shared host.
func newWakeVeth(t *testing.T) testVeth {
	t.Helper()
	n := vethSeq.Add(1)
	v := testVeth{
		host:  fmt.Sprintf("ntwk%d_%dh", os.Getpid()%100000, n),
		peer:  fmt.Sprintf("ntwk%d_%dp", os.Getpid()%100000, n),
		netns: fmt.Sprintf("ntwk-%d-%d", os.Getpid(), n),
	}
	run(t, "ip", "netns", "add", v.netns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", v.host).Run()
		_ = exec.Command("ip", "netns", "del", v.netns).Run()
	})
	run(t, "ip", "link", "add", v.host, "type", "veth", "peer", "name", v.peer, "netns", v.netns)
	run(t, "sysctl", "-qw", "net.ipv6.conf."+v.host+".disable_ipv6=1")
	run(t, "ip", "netns", "exec", v.netns, "sysctl", "-qw", "net.ipv6.conf."+v.peer+".disable_ipv6=1")
	run(t, "ip", "link", "set", v.host, "up")
	run(t, "ip", "-n", v.netns, "link", "set", v.peer, "up")
	return v
}

// timedSnapshot takes one flowagg.Aggregator.Snapshots and says how long it took.
func timedSnapshot(agg *flowagg.Aggregator, iface string) (*flowagg.TableSnapshot, time.Duration) {
	start := time.Now()
	snaps := agg.Snapshots(context.Background())
	took := time.Since(start)
	for _, s := range snaps {
		if s.Interface == iface {
			return s, took
		}
	}
	return nil, took
}

// TestSnapshotOfIdleInterfaceDoesNotWaitForPoll: a scrape wakes the capture
// goroutine of an idle interface instead of waiting for its poll timeout
// (publishEvery, 100 ms) or the ring's block timeout (1 s here), and what
// it gets is still exact once the kernel has handed the frames over.
func TestSnapshotOfIdleInterfaceDoesNotWaitForPoll(t *testing.T) {
	for _, fanout := range []int{1, 2} {
		t.Run(fmt.Sprintf("fanout %d", fanout), func(t *testing.T) {
			requirePrivileged(t)
			const blockTimeout = time.Second
			v := newWakeVeth(t)
			c, agg := startCapturer(t, CaptureConfig{Selector: Selector{Names: []string{v.host}},
				Fanout: fanout, BlockTimeout: blockTimeout, Rescan: time.Minute})
			waitFor(t, 3*time.Second, "capture to start", func() bool { _, ok := ifaceStats(c, v.host); return ok })
			waitFor(t, 3*time.Second, "first snapshot", func() bool { s, _ := timedSnapshot(agg, v.host); return s != nil })

			// Idle: each scrape is answered by a wake, not a timeout. Before
			// the wake every one took about publishEvery.
			var took []time.Duration
			for range 20 {
				s, d := timedSnapshot(agg, v.host)
				if s == nil || s.Total.Packets != 0 {
					t.Fatalf("snapshot of the idle %s: %+v, want one with no frames", v.host, s)
				}
				took = append(took, d)
			}
			slices.Sort(took)
			t.Logf("20 idle snapshots: median %s, longest %s", took[len(took)/2], took[len(took)-1])
			if med, longest := took[len(took)/2], took[len(took)-1]; med > publishEvery/10 || longest > publishEvery/2 {
				t.Errorf("idle snapshots took median %s, longest %s; want under %s and %s (the poll timeout is %s, the block timeout %s)",
					med, longest, publishEvery/10, publishEvery/2, publishEvery, blockTimeout)
			}

			// A known set of frames: they show up once the kernel retires its
			// block (within the block timeout), exactly, and each scrape
			// meanwhile is still answered at once.
			send := v.sender(t)
			const rounds = 50
			ports := []uint16{53, 123, 4789}
			var packets, bytes uint64
			for i := range rounds {
				for j, p := range ports {
					size := 60 + 10*j + i%7
					send(l4Frame(17, 40000+p, p, size))
					packets++
					bytes += uint64(size)
				}
			}
			var s *flowagg.TableSnapshot
			var longest time.Duration
			deadline := time.Now().Add(3 * blockTimeout)
			for {
				var d time.Duration
				s, d = timedSnapshot(agg, v.host)
				longest = max(longest, d)
				if s != nil && s.Total.Packets >= packets {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after %s the snapshot holds %+v, want %d frames", 3*blockTimeout, s, packets)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if longest > publishEvery/2 {
				t.Errorf("snapshots while the frames were in the ring took up to %s; want under %s", longest, publishEvery/2)
			}
			time.Sleep(blockTimeout + 200*time.Millisecond) // anything else would be in by now
			s, _ = timedSnapshot(agg, v.host)
			if s.Total != (flowagg.Counter{Packets: packets, Bytes: bytes}) {
				t.Fatalf("total %+v, want %d packets, %d bytes", s.Total, packets, bytes)
			}
			if err := s.CheckSums(); err != nil {
				t.Fatal(err)
			}
			if s.Shards != fanout {
				t.Errorf("snapshot merges %d shards, want %d", s.Shards, fanout)
			}
			for _, p := range ports {
				var got uint64
				for _, f := range s.Flows {
					if f.Key.DstPort == p {
						got += f.Packets
					}
				}
				if got != rounds {
					t.Errorf("flows to port %d: %d packets, want %d", p, got, rounds)
				}
			}
		})
	}
}

// partCounter is an flowagg.IfaceTable that counts the ring loop's PublishPart calls.
type partCounter struct {
	*flowagg.IfaceTable
	parts int
}

func (p *partCounter) PublishPart() bool { p.parts++; return p.IfaceTable.PublishPart() }

// TestWokenRingCopiesLargeTableInSlices: woken by a request, the ring loop
// of an idle interface copies a 100k-flow table slice by slice, checking
// for a ready block between slices, and answers well before its poll
// timeout.
func TestWokenRingCopiesLargeTableInSlices(t *testing.T) {
	requirePrivileged(t)
	v := newWakeVeth(t)
	ifi, err := net.InterfaceByName(v.host)
	if err != nil {
		t.Fatal(err)
	}
	r, err := openRing(ringOptions{name: v.host, ifindex: ifi.Index, blockSize: 1 << 16, numBlocks: 4, blockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const flows = 100_000
	agg := flowagg.NewAggregator(flowagg.Config{MaxFlowsPerInterface: 2 * flows, MaxFlowsTotal: 2 * flows, IdleTimeout: -1})
	sink := &partCounter{IfaceTable: agg.Interface(v.host)}
	for _, f := range frametest.Arena(t, flows) {
		sink.Add(f, 64, decoder.DirIn, time.Now())
	}
	sink.SetWaker(r.wake)
	errc := make(chan error, 1)
	go func() { errc <- r.run(sink, func() bool { return true }, func(error) {}) }()
	stopped := false
	stop := func() { // parts is read after run returned
		if !stopped {
			stopped = true
			r.stop()
			if err := <-errc; err != nil {
				t.Errorf("run: %v", err)
			}
			r.close(-1)
		}
	}
	defer stop()
	time.Sleep(2 * publishEvery) // the loop is parked in its wait

	for i := range 3 {
		start := time.Now()
		snaps := agg.Snapshots(context.Background())
		took := time.Since(start)
		if len(snaps) != 1 || len(snaps[0].Flows) != flows {
			t.Fatalf("snapshot %d: %d snapshots, want one of %d flows", i, len(snaps), flows)
		}
		t.Logf("snapshot %d of %d flows in %s", i, flows, took)
		if took > publishEvery/2 {
			t.Errorf("snapshot %d of an idle ring took %s, want under %s", i, took, publishEvery/2)
		}
	}
	stop()
	if sink.parts < 3*2 {
		t.Errorf("ring loop made %d PublishPart calls for 3 snapshots; want them in slices", sink.parts)
	}
}
