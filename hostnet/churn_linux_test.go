//go:build linux

package hostnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"
)

// TestScanWhileNamespacesVanish deletes named namespaces (with a veth to the
// host) and lets short-lived processes with their own namespace exit while
// scanning in a loop: Scan must never fail, report nothing inconsistent and
// leak no file descriptors.
func TestScanWhileNamespacesVanish(t *testing.T) {
	requirePrivileges(t)
	pid := os.Getpid()
	const slots = 4
	name := func(i int) string { return fmt.Sprintf("nta-t-%d-r%d", pid, i%slots) }
	dev := func(i int) string { return fmt.Sprintf("t%dr%d", pid, i%slots) }
	t.Cleanup(func() {
		for i := range slots {
			try("ip", "link", "del", dev(i))
			if _, err := os.Stat("/var/run/netns/" + name(i)); err == nil {
				try("ip", "netns", "del", name(i))
			}
		}
	})

	stop := make(chan struct{})
	churned := make(chan int)
	go func() {
		var procs []*exec.Cmd
		defer func() {
			for _, p := range procs {
				p.Wait()
			}
		}()
		for i := 0; ; i++ {
			select {
			case <-stop:
				churned <- i
				return
			default:
			}
			try("ip", "netns", "add", name(i))
			try("ip", "link", "add", dev(i), "type", "veth", "peer", "name", "eth0", "netns", name(i))
			if i >= 2 {
				try("ip", "netns", "del", name(i-2))
			}
			p := exec.Command("unshare", "-n", "sleep", "0.02")
			if p.Start() == nil {
				procs = append(procs, p)
			}
		}
	}()

	vanished := &countHandler{msg: "namespace vanished during scan"}
	s := NewScanner(Options{Logger: slog.New(vanished)})
	ctx := context.Background()
	if _, err := s.Scan(ctx); err != nil { // warm up the runtime's poller fds
		t.Fatal(err)
	}
	fdsBefore := countFDs(t)
	var scans, errs int
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); scans++ {
		snap, err := s.Scan(ctx)
		if err != nil {
			t.Fatalf("scan %d: %v", scans, err)
		}
		errs += len(snap.Errors)
		for _, e := range snap.Errors {
			t.Logf("scan %d: recorded error: %v", scans, e)
			var nerr *NamespaceError
			if !errors.As(e, &nerr) || isVanished(e) {
				t.Errorf("scan %d: vanished namespace reported as error: %v", scans, e)
			}
		}
		checkConsistent(t, snap)
	}
	close(stop)
	n := <-churned
	t.Logf("%d scans during %d namespace create/delete cycles; %d namespaces vanished mid-scan, %d errors",
		scans, n, vanished.n.Load(), errs)
	if errs > 0 {
		t.Errorf("%d errors recorded for namespaces that merely vanished", errs)
	}
	if after := countFDs(t); after > fdsBefore {
		t.Errorf("file descriptors: %d before scanning, %d after", fdsBefore, after)
	}
}

// checkConsistent checks that every link belongs to a listed namespace and
// that resolved peers point at listed namespaces and links pointing back.
func checkConsistent(t *testing.T, snap *Snapshot) {
	t.Helper()
	for _, l := range snap.Links {
		if _, ok := snap.Namespace(l.Netns); !ok {
			t.Errorf("link %s/%s in unlisted namespace", l.Netns, l.Name)
		}
		if l.PeerNetns == "" {
			continue
		}
		p, ok := snap.Link(l.PeerNetns, l.PeerName)
		if !ok || p.Index != l.PeerIndex {
			t.Errorf("link %s/%s: peer %s/%s (index %d) not in snapshot", l.Netns, l.Name, l.PeerNetns, l.PeerName, l.PeerIndex)
		} else if p.PeerNetns != "" && (p.PeerNetns != l.Netns || p.PeerName != l.Name) {
			t.Errorf("link %s/%s: peer %s/%s points at %s/%s", l.Netns, l.Name, p.Netns, p.Name, p.PeerNetns, p.PeerName)
		}
	}
}

// countHandler counts log records with one message.
type countHandler struct {
	msg string
	n   atomic.Int64
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

func countFDs(t *testing.T) int {
	t.Helper()
	// Let exited children's pipes close.
	time.Sleep(100 * time.Millisecond)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
