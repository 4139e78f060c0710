//go:build linux

package natview

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type fixedResolver struct{ e Endpoints }

func (f fixedResolver) Endpoints() (Endpoints, error) { return f.e, nil }

// Without nf_conntrack (no /proc/sys/net/netfilter) the view is unavailable
// and says which module to load; nothing is dialed.
func TestWithoutConntrackModuleTheViewSaysToLoadIt(t *testing.T) {
	w, err := New(Options{Resolver: fixedResolver{}, ProcPath: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = w.Snapshot()
		if err != nil && strings.Contains(err.Error(), "modprobe nf_conntrack") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Snapshot error %v, want one naming modprobe nf_conntrack", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("%v does not wrap ErrUnavailable", err)
	}
	cancel()
	<-done
}

// --collector.nat.accounting writes the sysctl under the procfs given, and
// says what to do when it cannot.
func TestAccountingFlagWritesTheSysctl(t *testing.T) {
	proc := t.TempDir()
	dir := filepath.Join(proc, "sys/net/netfilter")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nf_conntrack_acct"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Resolver: fixedResolver{}, ProcPath: proc, Accounting: true, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nf_conntrack_acct")); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("nf_conntrack_acct = %q after --collector.nat.accounting", b)
	}
	_, err := New(Options{Resolver: fixedResolver{}, ProcPath: filepath.Join(proc, "missing"), Accounting: true})
	if err == nil || !strings.Contains(err.Error(), "modprobe nf_conntrack") {
		t.Errorf("unwritable sysctl: %v", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("no resolver: no error")
	}
}
