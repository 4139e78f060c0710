//go:build linux

package afpacket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/tangfeixiong/nta/flowagg"
)

// newTestCapturer is NewCapturer with a debug logger to the test's stderr.
func newTestCapturer(t *testing.T, cfg CaptureConfig) (*Capturer, *flowagg.Aggregator) {
	t.Helper()
	agg := flowagg.NewAggregator(flowagg.Config{})
	c, err := NewCapturer(cfg, agg, nil, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return c, agg
}

// runCapturer runs c until the test ends; the returned channel gets Run's result.
func runCapturer(t *testing.T, c *Capturer) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	t.Cleanup(cancel)
	return errc
}

// TestKernelRejectedFilterStopsCapture: a filter that passes the parser's
// checks but that the kernel refuses (division by a constant 0) stops
// capture at start, before any ring is opened, with an error saying so,
// instead of being retried every rescan while the flows collector reports
// success.
func TestKernelRejectedFilterStopsCapture(t *testing.T) {
	requirePrivileged(t)
	prog, err := ParseBPF("2\n52 0 0 0\n6 0 0 65535\n") // A /= 0; return 65535
	if err != nil {
		t.Fatalf("the parser must accept the program (only the kernel rejects it): %v", err)
	}
	v := newVeth(t)
	var opens atomic.Int32
	c, _ := newTestCapturer(t, CaptureConfig{Selector: Selector{Names: []string{v.host}}, Filter: prog, Rescan: 100 * time.Millisecond})
	c.open = func(o ringOptions) (*ring, error) { opens.Add(1); return openRing(o) }
	select {
	case err := <-runCapturer(t, c):
		if !errors.Is(err, ErrFilterRejected) || !strings.Contains(err.Error(), "--collector.flows.filter-bpf") {
			t.Errorf("Run = %v, want ErrFilterRejected naming the flag", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("Run still running 3s after the kernel rejected the filter (%d ring opens)", opens.Load())
	}
	if !errors.Is(c.Err(), ErrFilterRejected) {
		t.Errorf("Err() = %v, want ErrFilterRejected (the flows collector fails)", c.Err())
	}
	if n := opens.Load(); n != 0 {
		t.Errorf("%d ring opens, want 0: the filter is checked once, at start", n)
	}
}

// TestFailedRingIsReported: while a selected interface's ring cannot be
// opened (here: injected ENOMEM), Err names it; once it opens, Err is nil.
func TestFailedRingIsReported(t *testing.T) {
	requirePrivileged(t)
	v := newVeth(t)
	var fail atomic.Bool
	fail.Store(true)
	c, _ := newTestCapturer(t, CaptureConfig{Selector: Selector{Names: []string{v.host}}, Rescan: 100 * time.Millisecond})
	c.open = func(o ringOptions) (*ring, error) {
		if fail.Load() {
			return nil, fmt.Errorf("%s: PACKET_RX_RING: cannot allocate memory", o.name)
		}
		return openRing(o)
	}
	runCapturer(t, c)
	waitFor(t, 3*time.Second, "Err to report the failed ring", func() bool { return c.Err() != nil })
	if err := c.Err(); !errors.Is(err, ErrInterfacesFailed) || !strings.Contains(err.Error(), v.host) {
		t.Fatalf("Err() = %v, want ErrInterfacesFailed naming %s", err, v.host)
	}
	fail.Store(false)
	waitFor(t, 3*time.Second, "capture to start on the next rescan", func() bool { _, ok := ifaceStats(c, v.host); return ok })
	waitFor(t, time.Second, "Err to clear", func() bool { return c.Err() == nil })
}

// TestRingMemoryBounds: rings beyond the per-interface bound are refused
// at start with the flags to change; interfaces beyond the total bound are
// not captured and reported by Err.
func TestRingMemoryBounds(t *testing.T) {
	sel := Selector{Names: []string{"x"}}
	_, err := NewCapturer(CaptureConfig{Selector: sel, NumBlocks: 100000}, flowagg.NewAggregator(flowagg.Config{}), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "--collector.flows.ring.max-interface-bytes") || !strings.Contains(err.Error(), "--collector.flows.ring.blocks") {
		t.Errorf("100000 blocks of 256 KiB: err %v, want a refusal naming the bound and the flags", err)
	}
	_, err = NewCapturer(CaptureConfig{Selector: sel, NumBlocks: 8, Fanout: 64}, flowagg.NewAggregator(flowagg.Config{}), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "fanout 64") {
		t.Errorf("8 blocks x fanout 64: err %v, want a refusal (128 MiB per interface)", err)
	}
	_, err = NewCapturer(CaptureConfig{Selector: sel, MaxTotalRingBytes: 1 << 20}, flowagg.NewAggregator(flowagg.Config{}), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "--collector.flows.ring.max-total-bytes") {
		t.Errorf("total bound below one ring: err %v", err)
	}
	if _, err := NewCapturer(CaptureConfig{Selector: sel}, flowagg.NewAggregator(flowagg.Config{}), nil, nil); err != nil {
		t.Errorf("defaults: %v", err)
	}

	requirePrivileged(t)
	a, b := newVeth(t), newVeth(t)
	ring := DefaultBlockSize * 4
	c, _ := newTestCapturer(t, CaptureConfig{Selector: Selector{Names: []string{a.host, b.host}}, NumBlocks: 4,
		MaxTotalRingBytes: ring + ring/2, Rescan: 100 * time.Millisecond})
	runCapturer(t, c)
	waitFor(t, 3*time.Second, "one interface captured and one refused", func() bool {
		return len(c.Stats()) == 1 && errors.Is(c.Err(), ErrRingBudget)
	})
	if err := c.Err(); !errors.Is(err, ErrInterfacesFailed) || !strings.Contains(err.Error(), "--collector.flows.ring.max-total-bytes") {
		t.Errorf("Err() = %v, want the refused interface and the flag", err)
	}
	captured := c.Stats()[0].Name
	other := a.host
	if captured == a.host {
		other = b.host
	}
	run(t, "ip", "link", "del", captured)
	waitFor(t, 3*time.Second, "the other interface to get the freed ring memory", func() bool {
		_, ok := ifaceStats(c, other)
		return ok && c.Err() == nil
	})
}

// fakeFeed is a link subscription that the test ends, as the library ends
// it on ENOBUFS; later subscriptions are real.
type fakeFeed struct {
	mu    sync.Mutex
	calls int
	lose  chan struct{} // closed by the test: the first feed ends
}

func (f *fakeFeed) subscribe(ch chan<- netlink.LinkUpdate, done <-chan struct{}, opts netlink.LinkSubscribeOptions) error {
	f.mu.Lock()
	f.calls++
	first := f.calls == 1
	f.mu.Unlock()
	if !first {
		return netlink.LinkSubscribeWithOptions(ch, done, opts)
	}
	go func() {
		select {
		case <-f.lose:
			opts.ErrorCallback(errors.New("Receive failed: no buffer space available"))
		case <-done:
		}
		close(ch)
	}()
	return nil
}

// TestLinkFeedLossResubscribes: when the link feed ends (ENOBUFS), the
// capture counts it, rescans at once (an interface that appeared while
// notifications were lost is picked up without waiting for the hourly
// rescan) and subscribes again (a later interface is picked up from a
// notification).
func TestLinkFeedLossResubscribes(t *testing.T) {
	requirePrivileged(t)
	feed := &fakeFeed{lose: make(chan struct{})}
	c, _ := newTestCapturer(t, CaptureConfig{Selector: Selector{Names: []string{fmt.Sprintf("ntc%d_*", os.Getpid()%100000)}}, Rescan: time.Hour})
	c.subscribe = feed.subscribe
	runCapturer(t, c)
	time.Sleep(200 * time.Millisecond) // the first scan is done
	missed := newVeth(t)               // its notifications are lost
	time.Sleep(300 * time.Millisecond)
	if _, ok := ifaceStats(c, missed.host); ok {
		t.Fatal("test feed delivered a notification")
	}
	close(feed.lose)
	waitFor(t, 3*time.Second, "the interface created while notifications were lost", func() bool { _, ok := ifaceStats(c, missed.host); return ok })
	if n := c.LinkResubscribes(); n != 1 {
		t.Errorf("LinkResubscribes() = %d, want 1", n)
	}
	later := newVeth(t)
	waitFor(t, 3*time.Second, "an interface created after the resubscribe, by notification", func() bool { _, ok := ifaceStats(c, later.host); return ok })
	feed.mu.Lock()
	defer feed.mu.Unlock()
	if feed.calls != 2 {
		t.Errorf("%d subscriptions, want 2", feed.calls)
	}
}

// TestLinkFeedENOBUFSResubscribes: with a link feed socket of the smallest
// receive buffer, a burst of interface changes makes the kernel drop
// notifications (ENOBUFS) for real; capture resubscribes, counts it, and
// an interface created afterwards is still picked up by notification (the
// rescan is an hour away).
func TestLinkFeedENOBUFSResubscribes(t *testing.T) {
	requirePrivileged(t)
	c, _ := newTestCapturer(t, CaptureConfig{Selector: Selector{Names: []string{fmt.Sprintf("ntc%d_*", os.Getpid()%100000)}}, Rescan: time.Hour})
	c.feedBuffer = 1 // the kernel's minimum
	runCapturer(t, c)
	time.Sleep(200 * time.Millisecond)
	var batch strings.Builder
	prefix := fmt.Sprintf("ntb%d_", os.Getpid()%100000)
	for i := range 40 {
		fmt.Fprintf(&batch, "link add %s%da type veth peer name %s%db\n", prefix, i, prefix, i)
	}
	missed := testVeth{host: fmt.Sprintf("ntc%d_burst", os.Getpid()%100000)} // made in the burst: its notification may be lost
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", missed.host).Run() })
	fmt.Fprintf(&batch, "link add %s type veth peer name %sp\nlink set %s up\n", missed.host, prefix, missed.host)
	for i := range 40 {
		fmt.Fprintf(&batch, "link del %s%da\n", prefix, i)
	}
	path := t.TempDir() + "/burst"
	if err := os.WriteFile(path, []byte(batch.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	again := strings.Join(strings.SplitN(batch.String(), "\n", 81)[:80], "\n") + "\n" // the 40 add/del pairs only
	if err := os.WriteFile(path+".again", []byte(again), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "-batch", path)
	for try := 0; try < 4 && c.LinkResubscribes() == 0; try++ {
		run(t, "ip", "-batch", path+".again")
		time.Sleep(100 * time.Millisecond)
	}
	if c.LinkResubscribes() == 0 {
		t.Skip("the kernel did not drop link notifications for a 2 KiB buffer here; covered by TestLinkFeedLossResubscribes")
	}
	if _, ok := ifaceStats(c, missed.host); !ok {
		waitFor(t, 3*time.Second, "the resync scan after the loss to pick up an interface made during the burst", func() bool { _, ok := ifaceStats(c, missed.host); return ok })
	}
	v := newVeth(t)
	waitFor(t, 3*time.Second, "an interface created after the loss, picked up by notification", func() bool { _, ok := ifaceStats(c, v.host); return ok })
	if err := c.lastFeedErr(); err == nil || !strings.Contains(err.Error(), "no buffer space") {
		t.Errorf("recorded feed error %v, want ENOBUFS", err)
	}
}
