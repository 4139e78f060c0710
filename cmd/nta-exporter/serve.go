package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/tangfeixiong/nta/collector"
	"github.com/tangfeixiong/nta/natview"
	"github.com/tangfeixiong/nta/topoweb"
)

type serveFlags struct {
	web         *web.FlagConfig
	collectors  *collector.Flags
	metricsPath *string
	maxRequests *int
	timeout     *time.Duration
	cacheAge    *time.Duration
	idle        *time.Duration
	flows       *flowFlags
}

// check rejects serve flags that cannot work, naming the flag and the fix;
// the errors wrap errUsage (exit 2).
func (s serveFlags) check() error {
	if *s.timeout <= 0 {
		return fmt.Errorf("%w: --scrape.timeout=%s: must be positive (every collector would fail every scrape), e.g. 10s", errUsage, *s.timeout)
	}
	if *s.idle <= 0 {
		return fmt.Errorf("%w: --web.idle-timeout=%s: must be positive, e.g. 2m", errUsage, *s.idle)
	}
	if *s.maxRequests < 0 {
		return fmt.Errorf("%w: --web.max-requests=%d: must be 0 (no limit) or more", errUsage, *s.maxRequests)
	}
	if s.web.WebSystemdSocket == nil || !*s.web.WebSystemdSocket {
		for _, a := range *s.web.WebListenAddresses {
			if strings.HasPrefix(a, "vsock://") {
				continue
			}
			if _, err := net.ResolveTCPAddr("tcp", a); err != nil {
				return fmt.Errorf("%w: --web.listen-address=%q: %w — give [HOST]:PORT, e.g. :9819 or 127.0.0.1:9819", errUsage, a, err)
			}
		}
	}
	if f := *s.web.WebConfigFile; f != "" {
		if err := web.Validate(f); err != nil {
			return fmt.Errorf("%w: --web.config.file=%s: %w — fix the file (exporter-toolkit web configuration: tls_server_config, basic_auth_users)", errUsage, f, err)
		}
	}
	return nil
}

// writeDeadline is how long a scrape may take from its start to its last
// byte: the collectors' deadline, then as long again to write the reply.
func (s serveFlags) writeDeadline() time.Duration { return 2 * *s.timeout }

// metricsServer is the HTTP server of the metrics path and the landing
// page. Slow or idle clients cannot hold its connections: each scrape has
// a write deadline (writeDeadline, see newMetricsHandler), keep-alive
// connections close after --web.idle-timeout, request headers must arrive
// within 10 s.
//
// page, when not nil, adds the topology page's routes and landing links.
func metricsServer(runner scrapeRunner, static prometheus.Gatherer, s serveFlags, page *topoweb.Handler, logger *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle(*s.metricsPath, newMetricsHandler(runner, static, *s.maxRequests, s.writeDeadline(), logger))
	links := []web.LandingLinks{{Address: *s.metricsPath, Text: "Metrics"}}
	if page != nil {
		page.Register(mux)
		links = append(links,
			web.LandingLinks{Address: topoweb.PagePath, Text: "Topology (live traffic map)"},
			web.LandingLinks{Address: topoweb.SVGPath, Text: "Topology (SVG)"})
	}
	if *s.metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "nta exporter",
			Description: "Network topology and traffic of this host: namespaces, bridges, veths, containers",
			Version:     version.Info(),
			Links:       links,
		})
		if err != nil {
			return nil, fmt.Errorf("landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: *s.idle}, nil
}

// serve runs the HTTP server until SIGINT/SIGTERM.
func serve(o options, s serveFlags, logger *slog.Logger) error {
	if err := s.check(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Watchers run until serve returns; each is closed only after its Run
	// has returned, so a start-up failure closes them without a warning
	// from a Run that started after Close.
	runCtx, cancelRun := context.WithCancel(ctx)
	var running sync.WaitGroup
	var closers []func()
	defer func() {
		cancelRun()
		running.Wait()
		for _, c := range slices.Backward(closers) {
			c()
		}
	}()

	logger.Info("starting nta-exporter", "version", version.Info(), "build_context", version.BuildContext())
	warnPrivileges(o.procPath, logger)

	// Start only the sources the enabled collectors declared they read.
	enabled := s.collectors.Enabled()
	needs := collector.SourcesNeeded(enabled)
	src := &collector.Sources{}
	// The topology page reads the host even when no collector does.
	host := collector.NewHostCache(newScanner(o, logger), *s.cacheAge)
	if needs.Has(collector.NeedHost) {
		src.Host = host
	}
	// The NAT view attributes connections through the Docker view.
	if needs.Has(collector.NeedDocker) || needs.Has(collector.NeedNAT) {
		w, err := newDocker(o, logger)
		if err != nil {
			return fmt.Errorf("%w: docker client: %w", errUsage, err)
		}
		closers = append(closers, func() { w.Close() })
		running.Go(func() { w.Run(runCtx) })
		src.Docker = w
	}
	if needs.Has(collector.NeedLibvirt) {
		w, err := newLibvirt(o, logger)
		if err != nil {
			return fmt.Errorf("%w: libvirt client: %w", errUsage, err)
		}
		closers = append(closers, w.Close)
		running.Go(func() { w.Run(runCtx) })
		src.Libvirt = w
	}
	if needs.Has(collector.NeedOVS) {
		w, err := newOVS(o, logger)
		if err != nil {
			return fmt.Errorf("%w: OVS client: %w", errUsage, err)
		}
		closers = append(closers, w.Close)
		running.Go(func() { w.Run(runCtx) })
		src.OVS = w
	}
	if needs.Has(collector.NeedNAT) {
		if o.nat.PeerBudget < 1 {
			return fmt.Errorf("%w: --collector.nat.peer-budget=%d: keep at least 1 peer per container (the rest fold into peer=\"overflow\")", errUsage, o.nat.PeerBudget)
		}
		opts := o.nat
		opts.ProcPath = o.procPath
		// VMs' leased addresses too, when the libvirt collector runs.
		var vms natview.LibvirtViewer
		if src.Libvirt != nil {
			vms = src.Libvirt
		}
		opts.Resolver = natview.ViewsResolver(src.Docker, vms)
		opts.Logger = logger.With("component", "nat")
		w, err := natview.New(opts)
		if err != nil {
			return fmt.Errorf("nat: %w", err)
		}
		running.Go(func() { w.Run(runCtx) })
		src.NAT = w
	}
	if needs.Has(collector.NeedFlows) {
		f, err := startFlows(ctx, s.flows, src, logger)
		if err != nil {
			return fmt.Errorf("%w: flow capture: %w", errUsage, err)
		}
		src.Flows = f
	}
	runner, err := collector.NewRunner(enabled, src, *s.timeout, logger)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	logger.Info("enabled collectors", "collectors", enabled, "sources", needs.String())

	static := prometheus.NewRegistry()
	static.MustRegister(versioncollector.NewCollector("nta"))
	renderer, err := topoweb.NewRenderer(ctx)
	if err != nil {
		return fmt.Errorf("topology page: %w", err)
	}
	defer renderer.Close()
	page := topoweb.NewHandler(topoweb.Source{Snapshot: host.SnapshotAt, Views: src.Views}, renderer,
		topoweb.Options{Timeout: *s.timeout, Logger: logger.With("component", "topology-page")})
	server, err := metricsServer(runner, prometheus.Gatherers{static, prometheus.DefaultGatherer}, s, page, logger)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(server, s.web, logger) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
		logger.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return server.Shutdown(shutdownCtx)
	}
}
