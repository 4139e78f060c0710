package collector

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tangfeixiong/nta/hostnet"
)

// BenchmarkGather50Namespaces measures one full scrape (namespaces, links,
// graph) on this host with 50 extra namespaces, each attached by a veth to
// one of two bridges. Needs root; run with
//
//	go test -run '^$' -bench Gather50 -benchmem ./collector/
func BenchmarkGather50Namespaces(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create namespaces")
	}
	const n = 50
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			b.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	cleanup := func() {
		for i := 0; i < n; i++ {
			_ = exec.Command("ip", "netns", "del", fmt.Sprintf("ntab%d", i)).Run()
		}
		_ = exec.Command("ip", "link", "del", "ntabbr0").Run()
		_ = exec.Command("ip", "link", "del", "ntabbr1").Run()
	}
	cleanup()
	b.Cleanup(cleanup)
	run("link", "add", "ntabbr0", "type", "bridge")
	run("link", "add", "ntabbr1", "type", "bridge")
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("ntab%d", i)
		run("netns", "add", ns)
		run("link", "add", fmt.Sprintf("ntabh%d", i), "type", "veth", "peer", "name", "eth0", "netns", ns)
		run("link", "set", fmt.Sprintf("ntabh%d", i), "master", fmt.Sprintf("ntabbr%d", i%2), "up")
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	src := &Sources{Host: NewHostCache(hostnet.NewScanner(hostnet.Options{Logger: logger}), 0)}
	reg, err := NewRunner([]string{"netns", "links", "graph"}, src, 10*time.Second, logger)
	if err != nil {
		b.Fatal(err)
	}
	pr := prometheus.NewPedanticRegistry()
	pr.MustRegister(reg)
	series := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fams, err := pr.Gather()
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			for _, f := range fams {
				series += len(f.GetMetric())
			}
		}
	}
	b.ReportMetric(float64(series), "series")
}
