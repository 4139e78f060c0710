package libvirtview

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// silentLibvirtd listens on a unix socket, accepts connections and reads
// what the client sends without ever answering: a hung libvirtd. Closing
// answer makes it close every connection.
func silentLibvirtd(t *testing.T) (sock string, accepted func() int) {
	t.Helper()
	sock = filepath.Join(t.TempDir(), "libvirt-sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return sock, func() int { mu.Lock(); defer mu.Unlock(); return len(conns) }
}

// The real go-libvirt client against a libvirtd that accepts and never
// answers: every attempt ends at Timeout, the watcher keeps redialing on
// fresh clients, View answers at once, and Close returns promptly.
func TestHungLibvirtdCannotHangWatcher(t *testing.T) {
	sock, accepted := silentLibvirtd(t)
	w, err := New(Options{Socket: sock, Timeout: 100 * time.Millisecond, Resync: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// backoff: package defaults (250ms doubling)
	done := make(chan struct{})
	go func() { w.Run(context.Background()); close(done) }()

	deadline := time.Now().Add(5 * time.Second)
	for accepted() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections in 5s: the watcher is stuck on a hung libvirtd instead of redialing", accepted())
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	_, err = w.View()
	if took := time.Since(start); took > 10*time.Millisecond {
		t.Errorf("View took %s while libvirtd hangs", took)
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("View err = %v, want ErrUnavailable saying libvirtd did not answer", err)
	}
	start = time.Now()
	w.Close()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of Close while libvirtd hangs")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %s", took)
	}
}
