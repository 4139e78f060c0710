//go:build linux

package afpacket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// startCapturer runs a Capturer on cfg until the test ends and checks that Run
// returns nil then.
func startCapturer(t *testing.T, cfg CaptureConfig) (*Capturer, *flowagg.Aggregator) {
	t.Helper()
	if cfg.BlockTimeout == 0 {
		cfg.BlockTimeout = 5 * time.Millisecond
	}
	agg := flowagg.NewAggregator(flowagg.Config{})
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := NewCapturer(cfg, agg, nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of cancel")
		}
		if n := len(c.Stats()); n != 0 {
			t.Errorf("after Run returned, %d interfaces still captured", n)
		}
		if n := len(agg.Tables()); n != 0 {
			t.Errorf("after Run returned, %d flow tables not released", n)
		}
	})
	return c, agg
}

// waitFor polls cond every 10ms until it is true or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ifaceStats(c *Capturer, name string) (IfaceStats, bool) {
	for _, s := range c.Stats() {
		if s.Name == name {
			return s, true
		}
	}
	return IfaceStats{}, false
}

func snapshotOf(agg *flowagg.Aggregator, name string) *flowagg.TableSnapshot {
	for _, s := range agg.Snapshots(context.Background()) {
		if s.Interface == name {
			return s
		}
	}
	return nil
}

// waitCounted waits until the table of iface counted want frames, then checks
// that no more arrive and returns the snapshot.
func waitCounted(t *testing.T, agg *flowagg.Aggregator, iface string, want uint64) *flowagg.TableSnapshot {
	t.Helper()
	var s *flowagg.TableSnapshot
	waitFor(t, 5*time.Second, "all frames counted", func() bool {
		s = snapshotOf(agg, iface)
		return s != nil && s.Total.Packets >= want
	})
	time.Sleep(300 * time.Millisecond)
	return snapshotOf(agg, iface)
}

// TestCaptureExactCounts sends a known set of UDP datagrams from a namespace
// and checks the flow table, the kernel statistics and `ip -s link` agree.
func TestCaptureExactCounts(t *testing.T) {
	for _, fanout := range []int{1, 2} {
		t.Run(map[int]string{1: "single socket", 2: "fanout 2"}[fanout], func(t *testing.T) {
			requirePrivileged(t)
			v := newVeth(t)
			c, agg := startCapturer(t, CaptureConfig{Selector: Selector{Names: []string{v.host}}, Fanout: fanout, Rescan: time.Minute})
			waitFor(t, 3*time.Second, "capture to start", func() bool { _, ok := ifaceStats(c, v.host); return ok })

			send := v.sender(t)
			sizes := []int{60, 61, 128, 300, 999, 1514}
			ports := []uint16{53, 123, 4789, 5000, 8125}
			const rounds = 200
			var packets, bytes uint64
			perPort := map[uint16]uint64{}
			for range rounds {
				for i, p := range ports {
					size := sizes[(int(p)+i)%len(sizes)]
					send(l4Frame(17, 40000+p, p, size))
					packets++
					bytes += uint64(size)
					perPort[p] += uint64(size)
				}
			}
			s := waitCounted(t, agg, v.host, packets)
			if s.Total.Packets != packets || s.Total.Bytes != bytes {
				t.Errorf("flow table total = %d packets %d bytes, want %d and %d", s.Total.Packets, s.Total.Bytes, packets, bytes)
			}
			if got := s.FlowSum(); got != s.Total {
				t.Errorf("flow sum %+v != total %+v", got, s.Total)
			}
			if len(s.Flows) != len(ports) || s.Shards != fanout {
				t.Errorf("%d flows in %d shards, want %d in %d", len(s.Flows), s.Shards, len(ports), fanout)
			}
			for _, f := range s.Flows {
				if f.Key.Dir != decoder.DirIn || f.Key.Proto != 17 || f.Packets != rounds || f.Bytes != perPort[f.Key.DstPort] {
					t.Errorf("flow to port %d: dir %v proto %d, %d packets %d bytes; want in, 17, %d, %d",
						f.Key.DstPort, f.Key.Dir, f.Key.Proto, f.Packets, f.Bytes, rounds, perPort[f.Key.DstPort])
				}
			}
			k, _ := ifaceStats(c, v.host)
			if k.Packets != packets || k.Drops != 0 || k.Sockets != fanout {
				t.Errorf("kernel stats %+v, want %d packets, 0 drops, %d sockets", k, packets, fanout)
			}
			if rx, rxBytes := v.linkStats(t); rx != packets || rxBytes != bytes {
				t.Errorf("ip -s link: %s received %d packets %d bytes, the test sent %d and %d", v.host, rx, rxBytes, packets, bytes)
			}
		})
	}
}

// TestCaptureFilterAndSnaplen attaches `tcpdump -ddd udp` and a 96-byte snaplen.
func TestCaptureFilterAndSnaplen(t *testing.T) {
	requirePrivileged(t)
	prog, err := ParseBPF(udpDDD)
	if err != nil {
		t.Fatal(err)
	}
	v := newVeth(t)
	c, agg := startCapturer(t, CaptureConfig{Selector: Selector{Names: []string{v.host}}, Filter: prog, Snaplen: 96})
	waitFor(t, 3*time.Second, "capture to start", func() bool { _, ok := ifaceStats(c, v.host); return ok })
	send := v.sender(t)
	for i := range 500 {
		send(l4Frame(17, 1000, 2000, 1400))
		send(l4Frame(6, 1000, 80, 100+i))
	}
	s := waitCounted(t, agg, v.host, 500)
	if s.Total.Packets != 500 || s.Total.Bytes != 500*1400 {
		t.Errorf("flow table total = %+v, want only the 500 UDP frames of 1400 bytes (wire length despite snaplen 96)", s.Total)
	}
	if k, _ := ifaceStats(c, v.host); k.Packets != 500 || k.Drops != 0 {
		t.Errorf("kernel stats %+v, want 500 packets that passed the filter, 0 drops", k)
	}
}

// TestCaptureInterfaceLifecycle: an interface created after Run is picked up
// by netlink notification (rescan is an hour), survives down/up, and is released
// cleanly when deleted mid-capture, while another interface keeps being captured.
func TestCaptureInterfaceLifecycle(t *testing.T) {
	requirePrivileged(t)
	stay := newVeth(t)
	c, agg := startCapturer(t, CaptureConfig{
		Selector: Selector{Names: []string{fmt.Sprintf("ntc%d_*", os.Getpid()%100000)}},
		Rescan:   time.Hour,
	})
	waitFor(t, 3*time.Second, "first interface picked up", func() bool { _, ok := ifaceStats(c, stay.host); return ok })

	v := newVeth(t) // after Run started
	waitFor(t, 3*time.Second, "new interface picked up by notification", func() bool { _, ok := ifaceStats(c, v.host); return ok })
	send := v.sender(t)
	for range 100 {
		send(l4Frame(17, 1, 2, 100))
	}
	waitCounted(t, agg, v.host, 100)

	run(t, "ip", "link", "set", v.host, "down")
	time.Sleep(300 * time.Millisecond)
	if _, ok := ifaceStats(c, v.host); !ok {
		t.Fatalf("%s released when it only went down", v.host)
	}
	run(t, "ip", "link", "set", v.host, "up")
	waitFor(t, 3*time.Second, "peer carrier", func() bool {
		b, _ := os.ReadFile("/sys/class/net/" + v.host + "/operstate")
		return string(b) == "up\n"
	})
	for range 50 {
		send(l4Frame(17, 1, 2, 100))
	}
	if s := waitCounted(t, agg, v.host, 150); s.Total.Packets != 150 {
		t.Errorf("after down/up: %d frames counted, want 150", s.Total.Packets)
	}

	c.mu.Lock()
	ic := c.ifaces[v.host]
	c.mu.Unlock()
	run(t, "ip", "link", "del", v.host)
	select {
	case <-ic.done:
	case <-time.After(3 * time.Second):
		t.Fatal("capture goroutines still running 3s after the interface was deleted")
	}
	waitFor(t, 3*time.Second, "interface released", func() bool { _, ok := ifaceStats(c, v.host); return !ok })
	for _, tb := range agg.Tables() {
		if tb.Name() == v.host {
			t.Errorf("flow table of deleted %s not released", v.host)
		}
	}
	if _, ok := ifaceStats(c, stay.host); !ok {
		t.Errorf("%s no longer captured after another interface vanished", stay.host)
	}
	send2 := stay.sender(t)
	for range 10 {
		send2(l4Frame(17, 1, 2, 60))
	}
	waitCounted(t, agg, stay.host, 10)
}

type fakeRoles struct {
	m atomic.Pointer[map[string][]string]
}

func (f *fakeRoles) InterfaceRoles(context.Context) (map[string][]string, error) {
	if p := f.m.Load(); p != nil {
		return *p, nil
	}
	return nil, errors.New("role source down")
}

func (f *fakeRoles) set(m map[string][]string) { f.m.Store(&m) }

// TestCaptureRoleSource selects by a role only the RoleSource knows; a failed
// RoleSource (an error) keeps the capture, a RoleSource that drops the role ends it.
func TestCaptureRoleSource(t *testing.T) {
	requirePrivileged(t)
	v := newVeth(t)
	roles := &fakeRoles{}
	roles.set(map[string][]string{v.host: {"vm-tap"}})
	agg := flowagg.NewAggregator(flowagg.Config{})
	c, err := NewCapturer(CaptureConfig{Selector: Selector{Roles: []string{"vm-tap"}}, Rescan: 100 * time.Millisecond}, agg, roles, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("Err after a clean stop = %v, want context.Canceled", err)
		}
	}()
	if err := c.Err(); err != nil {
		t.Errorf("Err while running = %v, want nil", err)
	}
	waitFor(t, 3*time.Second, "interface selected by role", func() bool { _, ok := ifaceStats(c, v.host); return ok })

	roles.m.Store(nil)
	time.Sleep(400 * time.Millisecond) // several rescans
	if _, ok := ifaceStats(c, v.host); !ok {
		t.Fatal("capture stopped while the role source was failing")
	}
	roles.set(map[string][]string{})
	waitFor(t, 3*time.Second, "interface deselected", func() bool { _, ok := ifaceStats(c, v.host); return !ok })
	if len(agg.Tables()) != 0 {
		t.Error("flow table of the deselected interface not released")
	}
}
