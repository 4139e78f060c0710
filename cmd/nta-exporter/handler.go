package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/tangfeixiong/nta/collector"
)

// scrapeRunner runs the collectors of one scrape under its context
// (collector.Runner).
type scrapeRunner interface {
	Run(ctx context.Context, ch chan<- prometheus.Metric)
}

// runCollector is a scrapeRunner bound to one request's context, as an
// unchecked prometheus.Collector.
type runCollector struct {
	ctx context.Context
	r   scrapeRunner
}

func (runCollector) Describe(chan<- *prometheus.Desc) {}

func (c runCollector) Collect(ch chan<- prometheus.Metric) { c.r.Run(c.ctx, ch) }

// metricsHandler serves /metrics. Each request gathers the collectors under
// its own context (so a scrape's deadline and cancellation reach them, and
// nothing a scrape takes is shared with another), plus the static families
// (build info, Go runtime, process).
//
// The two flow families are most of a scrape with flows on (two series per
// flow, 100k and more), and client_golang spends most of its time on them (a
// protobuf message per series, consistency checks, sorting, encoding), so
// for the text format, what Prometheus and curl ask for by default, it
// gathers with a collector.FlowText in the context: the flows collector
// leaves the flow series out and hands this scrape's snapshots to it, the
// handler encodes the gathered families with expfmt and then appends the
// flow families written straight from those snapshots. Other formats
// (protobuf) and name[] filters go to promhttp, where the flows collector
// exports the flow series through client_golang. It behaves like
// promhttp.HandlerFor with ContinueOnError: gather errors are logged and
// whatever was gathered is served; gzip is used when the client prefers it.
type metricsHandler struct {
	runner   scrapeRunner
	static   prometheus.Gatherer
	inFlight chan struct{} // --web.max-requests; nil: no limit
	deadline time.Duration // from a request's start to its last byte; 0: none
	logger   *slog.Logger
	opts     promhttp.HandlerOpts
}

// newMetricsHandler serves the families of runner and static; maxRequests >
// 0 limits the scrapes served at once (the rest get 503, as with promhttp).
// deadline > 0 bounds each request, gathering and writing, from its start:
// a client that does not read its reply loses the connection then, so it
// cannot keep one of the maxRequests slots (and the gathered reply) forever.
func newMetricsHandler(runner scrapeRunner, static prometheus.Gatherer, maxRequests int, deadline time.Duration, logger *slog.Logger) http.Handler {
	h := &metricsHandler{
		runner:   runner,
		static:   static,
		deadline: deadline,
		logger:   logger,
		opts: promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		},
	}
	if maxRequests > 0 {
		h.inFlight = make(chan struct{}, maxRequests)
	}
	return h
}

// gatherer returns the gatherer of one scrape under ctx.
func (h *metricsHandler) gatherer(ctx context.Context) prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	reg.MustRegister(runCollector{ctx: ctx, r: h.runner})
	return prometheus.Gatherers{reg, h.static}
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.deadline > 0 {
		// The server clears it after the request, for the next one on the
		// connection.
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.deadline)); err != nil {
			h.logger.Debug("cannot set the write deadline of a scrape", "err", err)
		}
	}
	if h.inFlight != nil {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", cap(h.inFlight)),
				http.StatusServiceUnavailable)
			return
		}
	}
	format := expfmt.Negotiate(r.Header)
	if format.FormatType() != expfmt.TypeTextPlain || r.URL.Query().Has("name[]") {
		promhttp.HandlerFor(h.gatherer(r.Context()), h.opts).ServeHTTP(w, r)
		return
	}

	ctx, flows := collector.WithFlowText(r.Context())
	mfs, err := h.gatherer(ctx).Gather()
	if err != nil {
		h.logger.Error("error gathering metrics", "err", err)
		if len(mfs) == 0 {
			http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	header := w.Header()
	header.Add("Vary", "Accept")
	header.Add("Vary", "Accept-Encoding")
	header.Set("Content-Type", string(format))
	var out io.Writer = w
	if prefersGzip(r.Header) {
		header.Set("Content-Encoding", "gzip")
		gz := gzipPool.Get().(*gzip.Writer)
		gz.Reset(w)
		defer func() {
			if err := gz.Close(); err != nil {
				h.logger.Debug("sending metrics", "err", err)
			}
			gzipPool.Put(gz)
		}()
		out = gz
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	enc := expfmt.NewEncoder(bw, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			h.logger.Error("error encoding and sending metric family", "err", err)
			return
		}
	}
	if err := flows.WriteText(bw); err != nil {
		h.logger.Error("error encoding and sending flow metrics", "err", err)
		return
	}
	if err := bw.Flush(); err != nil {
		h.logger.Debug("sending metrics", "err", err)
	}
}

var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// prefersGzip chooses the content encoding as promhttp does: the offer
// (identity, then gzip) that a coding of the highest q matches, by name or
// as "*", the first offer winning ties; q=0 everywhere means identity.
func prefersGzip(h http.Header) bool {
	best, bestQ := "identity", -1.0
	specs := acceptEncodings(h)
	for _, offer := range []string{"identity", "gzip"} {
		for _, s := range specs {
			if s.q > bestQ && (s.coding == "*" || s.coding == offer) {
				best, bestQ = offer, s.q
			}
		}
	}
	return best == "gzip" && bestQ > 0
}

type acceptEncoding struct {
	coding string
	q      float64
}

// acceptEncodings parses Accept-Encoding ("gzip, br;q=0.5"); codings with
// an unreadable quality are left out.
func acceptEncodings(h http.Header) []acceptEncoding {
	var specs []acceptEncoding
	for _, v := range h.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			s := acceptEncoding{coding: strings.ToLower(strings.TrimSpace(coding)), q: 1}
			if s.coding == "" {
				continue
			}
			if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
				f, err := strconv.ParseFloat(q, 64)
				if err != nil || f < 0 || f > 1 {
					continue
				}
				s.q = f
			}
			specs = append(specs, s)
		}
	}
	return specs
}
