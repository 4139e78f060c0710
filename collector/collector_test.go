package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeCollector struct {
	err  error
	hang bool
}

var fakeDesc = prometheus.NewDesc("nta_fake", "fake", []string{"which"}, nil)

func (f *fakeCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	if f.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if f.err == nil {
		ch <- prometheus.MustNewConstMetric(fakeDesc, prometheus.GaugeValue, 1, fmt.Sprintf("%p", f))
	}
	return f.err
}

func newTestRunner(t *testing.T, cs map[string]Collector, timeout time.Duration) (*Runner, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	r := &Runner{
		collectors: cs,
		timeout:    timeout,
		logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		lastState:  map[string]string{},
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nta_collector_errors_total", Help: "h"},
			[]string{"collector"}),
	}
	return r, &logs
}

func TestRunnerReportsEachCollector(t *testing.T) {
	fail := &fakeCollector{err: errors.New("boom")}
	r, logs := newTestRunner(t, map[string]Collector{
		"ok":     &fakeCollector{},
		"absent": &fakeCollector{err: ErrNoData},
		"fail":   fail,
		"hang":   &fakeCollector{hang: true},
	}, 200*time.Millisecond)

	begin := time.Now()
	for i := 0; i < 3; i++ {
		want := `
# HELP nta_collector_success 1 when a collector's last scrape succeeded, 0 when it failed or its source is absent.
# TYPE nta_collector_success gauge
nta_collector_success{collector="absent"} 0
nta_collector_success{collector="fail"} 0
nta_collector_success{collector="hang"} 0
nta_collector_success{collector="ok"} 1
`
		if err := testutil.CollectAndCompare(r, strings.NewReader(want), "nta_collector_success"); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("3 scrapes with a hung collector took %v; the deadline is 200ms", took)
	}
	// Errors are counted for failures (3 scrapes × fail, hang), not for absent sources.
	if v := testutil.ToFloat64(r.errors.WithLabelValues("fail")); v != 3 {
		t.Errorf("fail errors_total = %v, want 3", v)
	}
	if v := testutil.ToFloat64(r.errors.WithLabelValues("absent")); v != 0 {
		t.Errorf("absent errors_total = %v, want 0", v)
	}
	// A lasting fault is logged once, not once per scrape.
	if n := strings.Count(logs.String(), `collector=fail`); n != 1 {
		t.Errorf("fail logged %d times over 3 scrapes, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "level=ERROR msg=\"collector failed\" collector=absent") {
		t.Errorf("an absent source logged as an error:\n%s", logs)
	}
	// Recovery is logged once.
	fail.err = nil
	_ = testutil.CollectAndCount(r)
	_ = testutil.CollectAndCount(r)
	if n := strings.Count(logs.String(), `msg="collector recovered" collector=fail`); n != 1 {
		t.Errorf("recovery logged %d times, want 1:\n%s", n, logs)
	}
}

func TestNewRunnerUnknownCollector(t *testing.T) {
	_, err := NewRunner([]string{"nope"}, &Sources{}, time.Second, slog.Default())
	if err == nil || !strings.Contains(err.Error(), `unknown collector "nope"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestDockerCollectorNeedsWatcher(t *testing.T) {
	if _, err := NewRunner([]string{"docker"}, &Sources{}, time.Second, slog.Default()); err == nil {
		t.Fatal("docker collector built without a Docker watcher")
	}
}
