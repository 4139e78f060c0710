// Package collector holds nta's Prometheus collectors and the [Runner] that
// scrapes them: one file per data source (network namespaces, links, Docker,
// the topology graph), each enabled or disabled with --[no-]collector.NAME,
// each run concurrently on every scrape under a deadline and reported as
// nta_collector_success and nta_collector_duration_seconds.
//
// Collectors read their data through small source interfaces ([HostSource],
// [DockerSource]) and declare at registration which sources they need
// ([Need]), so main starts only those and tests feed literal snapshots.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Namespace is the prefix of every metric nta exports.
const Namespace = "nta"

// ErrNoData tells the Runner that a collector's source is absent (Docker
// not installed, say). The scrape reports success 0 and logs at debug level
// instead of logging an error on every scrape.
var ErrNoData = errors.New("collector returned no data")

// Collector is one source of metrics. Update must respect ctx's deadline:
// collectors that talk to daemons pass it on to every call.
type Collector interface {
	Update(ctx context.Context, ch chan<- prometheus.Metric) error
}

// Factory builds a collector from the shared sources.
type Factory func(src *Sources, logger *slog.Logger) (Collector, error)

type registration struct {
	defaultEnabled bool
	needs          Need
	help           string
	factory        Factory
}

// factories is filled by each collector file's init and never changed after.
var factories = map[string]registration{}

// registerCollector adds a collector: its name (and --collector.NAME flag),
// whether it is on by default, the sources its factory reads from Sources,
// a help text and the factory.
func registerCollector(name string, defaultEnabled bool, needs Need, help string, f Factory) {
	if _, dup := factories[name]; dup {
		panic("collector registered twice: " + name)
	}
	factories[name] = registration{defaultEnabled: defaultEnabled, needs: needs, help: help, factory: f}
}

// Names returns the registered collector names, sorted.
func Names() []string {
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Flags holds the --collector.NAME switches.
type Flags struct {
	enabled map[string]*bool
}

// AddFlags registers --[no-]collector.NAME for every collector on app.
func AddFlags(app *kingpin.Application) *Flags {
	f := &Flags{enabled: map[string]*bool{}}
	for _, name := range Names() {
		r := factories[name]
		state := "disabled"
		if r.defaultEnabled {
			state = "enabled"
		}
		f.enabled[name] = app.Flag("collector."+name,
			fmt.Sprintf("Enable the %s collector: %s (default: %s).", name, r.help, state)).
			Default(fmt.Sprint(r.defaultEnabled)).Bool()
	}
	return f
}

// Enabled returns the names of the collectors switched on.
func (f *Flags) Enabled() []string {
	var out []string
	for _, name := range Names() {
		if p := f.enabled[name]; p != nil && *p {
			out = append(out, name)
		}
	}
	return out
}

var (
	durationDesc = prometheus.NewDesc(Namespace+"_collector_duration_seconds",
		"Time a collector took in the last scrape.", []string{"collector"}, nil)
	successDesc = prometheus.NewDesc(Namespace+"_collector_success",
		"1 when a collector's last scrape succeeded, 0 when it failed or its source is absent.", []string{"collector"}, nil)
)

// Runner runs a set of collectors as one prometheus.Collector, each in its
// own goroutine under one deadline per scrape. Register it on a
// prometheus.Registry.
type Runner struct {
	collectors map[string]Collector
	timeout    time.Duration
	logger     *slog.Logger
	errors     *prometheus.CounterVec

	mu        sync.Mutex
	lastState map[string]string // last logged error per collector, so a lasting fault logs once
}

// NewRunner builds the named collectors from src, which must hold the
// sources [SourcesNeeded] reports for names. A collector whose factory fails
// is an error: the caller asked for it and should know.
func NewRunner(names []string, src *Sources, timeout time.Duration, logger *slog.Logger) (*Runner, error) {
	r := &Runner{
		collectors: map[string]Collector{},
		timeout:    timeout,
		logger:     logger,
		lastState:  map[string]string{},
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "collector_errors_total",
			Help: "Scrapes in which a collector failed.",
		}, []string{"collector"}),
	}
	for _, name := range names {
		reg, ok := factories[name]
		if !ok {
			return nil, fmt.Errorf("unknown collector %q (known: %v)", name, Names())
		}
		c, err := reg.factory(src, logger.With("collector", name))
		if err != nil {
			return nil, fmt.Errorf("collector %s: %w", name, err)
		}
		r.collectors[name] = c
		r.errors.WithLabelValues(name)
	}
	return r, nil
}

// Describe implements prometheus.Collector. It describes nothing, which
// makes the Runner an unchecked collector: which families a scrape holds
// depends on the host and on which sources answer. The client library still
// checks every collected metric for consistency (even a pedantic registry
// accepts it).
func (r *Runner) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector: every collector runs in its own
// goroutine under one deadline.
func (r *Runner) Collect(ch chan<- prometheus.Metric) {
	r.Run(context.Background(), ch)
}

// Run is Collect with a parent context.
func (r *Runner) Run(parent context.Context, ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(parent, r.timeout)
	defer cancel()
	var wg sync.WaitGroup
	for name, c := range r.collectors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.execute(ctx, name, c, ch)
		}()
	}
	wg.Wait()
	r.errors.Collect(ch)
}

func (r *Runner) execute(ctx context.Context, name string, c Collector, ch chan<- prometheus.Metric) {
	begin := time.Now()
	err := c.Update(ctx, ch)
	took := time.Since(begin).Seconds()
	success := 1.0
	state := ""
	switch {
	case err == nil:
	case errors.Is(err, ErrNoData):
		success = 0
		state = "nodata: " + err.Error()
		r.logOnce(name, state, slog.LevelDebug, "collector has no data", err)
	default:
		success = 0
		state = err.Error()
		r.errors.WithLabelValues(name).Inc()
		r.logOnce(name, state, slog.LevelError, "collector failed", err)
	}
	if state == "" {
		r.logOnce(name, "", slog.LevelInfo, "collector recovered", nil)
	}
	ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, took, name)
	ch <- prometheus.MustNewConstMetric(successDesc, prometheus.GaugeValue, success, name)
}

// logOnce logs a collector's state only when it changes, so a lasting fault
// (Docker down for an hour) is one line, not one per scrape.
func (r *Runner) logOnce(name, state string, level slog.Level, msg string, err error) {
	r.mu.Lock()
	prev, seen := r.lastState[name]
	r.lastState[name] = state
	r.mu.Unlock()
	if seen && prev == state {
		return
	}
	if !seen && state == "" {
		return // first scrape succeeded: nothing to say
	}
	args := []any{"collector", name}
	if err != nil {
		args = append(args, "err", err)
	}
	r.logger.Log(context.Background(), level, msg, args...)
}
