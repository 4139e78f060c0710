//go:build linux

package hostnet

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// benchNamespaces is how many namespaces BenchmarkScan builds, each holding
// one end of a veth whose other end is a port of a host bridge.
const benchNamespaces = 50

func setupBench(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (creates network namespaces)") // even under CI: benchmarks are opt-in
	}
	requirePrivileges(b)
	pid := os.Getpid()
	br := fmt.Sprintf("tb%dbr", pid)
	run(b, "ip", "link", "add", br, "type", "bridge")
	cleanup(b, "ip", "link", "del", br)
	run(b, "ip", "link", "set", br, "addrgenmode", "none", "up")
	for i := range benchNamespaces {
		ns, dev := fmt.Sprintf("nta-b-%d-%d", pid, i), fmt.Sprintf("tb%dv%d", pid, i)
		addNetns(b, ns)
		run(b, "ip", "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", ns)
		run(b, "ip", "link", "set", dev, "master", br, "addrgenmode", "none", "up")
		run(b, "ip", "-n", ns, "link", "set", "eth0", "up")
		run(b, "ip", "-n", ns, "addr", "add", fmt.Sprintf("10.233.%d.2/24", i), "dev", "eth0")
	}
}

// BenchmarkScan measures a full scan of the host plus benchNamespaces
// namespaces: "warm" reuses one Scanner as the exporter does (netnsids come
// from the cache), "cold" builds a new Scanner every time.
func BenchmarkScan(b *testing.B) {
	setupBench(b)
	ctx := context.Background()
	report := func(b *testing.B, snap *Snapshot) {
		b.ReportMetric(float64(len(snap.Namespaces)), "netns")
		b.ReportMetric(float64(len(snap.Links)), "links")
	}
	b.Run("warm", func(b *testing.B) {
		s := NewScanner(Options{})
		snap, err := s.Scan(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if snap, err = s.Scan(ctx); err != nil {
				b.Fatal(err)
			}
		}
		report(b, snap)
	})
	b.Run("cold", func(b *testing.B) {
		var snap *Snapshot
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if snap, err = NewScanner(Options{}).Scan(ctx); err != nil {
				b.Fatal(err)
			}
		}
		report(b, snap)
	})
}
