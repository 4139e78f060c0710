package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/tangfeixiong/nta/collector"
	"github.com/tangfeixiong/nta/natview"
)

type serveFlags struct {
	web         *web.FlagConfig
	collectors  *collector.Flags
	metricsPath *string
	maxRequests *int
	timeout     *time.Duration
	cacheAge    *time.Duration
	flows       *flowFlags
}

// serve runs the HTTP server until SIGINT/SIGTERM.
func serve(o options, s serveFlags, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger.Info("starting nta-exporter", "version", version.Info(), "build_context", version.BuildContext())
	warnPrivileges(o.procPath, logger)

	// Start only the sources the enabled collectors declared they read.
	enabled := s.collectors.Enabled()
	needs := collector.SourcesNeeded(enabled)
	src := &collector.Sources{}
	if needs.Has(collector.NeedHost) {
		src.Host = collector.NewHostCache(newScanner(o, logger), *s.cacheAge)
	}
	// The NAT view attributes connections through the Docker view.
	if needs.Has(collector.NeedDocker) || needs.Has(collector.NeedNAT) {
		w, err := newDocker(o, logger)
		if err != nil {
			return fmt.Errorf("%w: docker client: %w", errUsage, err)
		}
		defer w.Close()
		go w.Run(ctx)
		src.Docker = w
	}
	if needs.Has(collector.NeedLibvirt) {
		w, err := newLibvirt(o, logger)
		if err != nil {
			return fmt.Errorf("%w: libvirt client: %w", errUsage, err)
		}
		defer w.Close()
		go w.Run(ctx)
		src.Libvirt = w
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
		go w.Run(ctx)
		src.NAT = w
	}
	if needs.Has(collector.NeedFlows) {
		f, err := startFlows(ctx, s.flows, src, logger)
		if err != nil {
			return fmt.Errorf("flow capture: %w", err)
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
	handler := newMetricsHandler(runner, prometheus.Gatherers{static, prometheus.DefaultGatherer}, *s.maxRequests, logger)

	mux := http.NewServeMux()
	mux.Handle(*s.metricsPath, handler)
	if *s.metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "nta exporter",
			Description: "Network topology and traffic of this host: namespaces, bridges, veths, containers",
			Version:     version.Info(),
			Links:       []web.LandingLinks{{Address: *s.metricsPath, Text: "Metrics"}},
		})
		if err != nil {
			return fmt.Errorf("landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
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
