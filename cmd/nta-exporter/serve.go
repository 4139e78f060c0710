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
	"github.com/tangfeixiong/nta/topoweb"
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
	// The topology page reads the host even when no collector does.
	host := collector.NewHostCache(newScanner(o, logger), *s.cacheAge)
	if needs.Has(collector.NeedHost) {
		src.Host = host
	}
	if needs.Has(collector.NeedDocker) {
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
	if needs.Has(collector.NeedOVS) {
		w, err := newOVS(o, logger)
		if err != nil {
			return fmt.Errorf("%w: OVS client: %w", errUsage, err)
		}
		defer w.Close()
		go w.Run(ctx)
		src.OVS = w
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
	renderer, err := topoweb.NewRenderer(ctx)
	if err != nil {
		return fmt.Errorf("topology page: %w", err)
	}
	defer renderer.Close()
	topoweb.NewHandler(topoweb.Source{Snapshot: host.SnapshotAt, Views: src.Views}, renderer,
		topoweb.Options{Timeout: *s.timeout, Logger: logger.With("component", "topology-page")}).Register(mux)
	if *s.metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "nta exporter",
			Description: "Network topology and traffic of this host: namespaces, bridges, veths, containers",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: *s.metricsPath, Text: "Metrics"},
				{Address: topoweb.PagePath, Text: "Topology (live traffic map)"},
				{Address: topoweb.SVGPath, Text: "Topology (SVG)"},
			},
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
