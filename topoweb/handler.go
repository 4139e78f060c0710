package topoweb

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/topology"
)

//go:embed assets
var assets embed.FS

// Source is where the page reads the host: the kernel's reading with the
// time it was taken, and the daemons' current views (any may be nil).
type Source struct {
	Snapshot func(ctx context.Context) (*hostnet.Snapshot, time.Time, error)
	Views    func() topology.Views
}

// Options tune the page.
type Options struct {
	// Refresh is how often the page polls; 3 s when zero.
	Refresh time.Duration
	// Window is the span rates are computed over; 5 s when zero (OVS
	// writes its statistics every 5 s).
	Window time.Duration
	// Timeout bounds one reading of the host; 10 s when zero.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Handler serves the page, its script and style, the graph with traffic
// as JSON and the laid-out SVG. Mount it with [Handler.Register].
type Handler struct {
	src     Source
	render  *Renderer
	opts    Options
	history *history
}

// NewHandler returns the page's handler over src, drawing with r.
func NewHandler(src Source, r *Renderer, opts Options) *Handler {
	if opts.Refresh <= 0 {
		opts.Refresh = 3 * time.Second
	}
	if opts.Window <= 0 {
		opts.Window = 5 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{src: src, render: r, opts: opts, history: &history{window: opts.Window}}
}

// Paths the handler serves, relative to the server's root.
const (
	PagePath = "/topology"
	DataPath = "/topology.json"
	SVGPath  = "/topology.svg"
)

// Register mounts the page (PagePath), its script and style, DataPath and
// SVGPath on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PagePath, h.asset("assets/topology.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /topology.js", h.asset("assets/topology.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /topology.css", h.asset("assets/topology.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET "+DataPath, h.serveData)
	mux.HandleFunc("GET "+SVGPath, h.serveSVG)
}

// csp keeps the page to its own origin: nothing is fetched from elsewhere.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"

func (h *Handler) asset(name, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		b, err := assets.ReadFile(name)
		if err != nil {
			http.Error(w, "missing embedded asset "+name, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	}
}

// NodeData is a node with its traffic (nil before two readings, or when it
// has no counters).
type NodeData struct {
	topology.Node
	Traffic *Traffic `json:"traffic"`
}

// EdgeData is an edge with the traffic over it (nil when no end of it has
// counters, or before two readings).
type EdgeData struct {
	topology.Edge
	Traffic *Traffic `json:"traffic"`
}

// Data is the page's poll: the graph, the key of its drawing (fetch
// SVGPath again when it changes) and traffic over WindowSeconds.
type Data struct {
	Time           time.Time  `json:"time"`
	Layout         string     `json:"layout"`
	RefreshSeconds float64    `json:"refresh_seconds"`
	WindowSeconds  float64    `json:"window_seconds"`
	Nodes          []NodeData `json:"nodes"`
	Edges          []EdgeData `json:"edges"`
}

// graph reads the host and builds its graph and counters.
func (h *Handler) graph(ctx context.Context) (*topology.Graph, *reading, topology.Views, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	snap, at, err := h.src.Snapshot(ctx)
	if err != nil {
		return nil, nil, topology.Views{}, err
	}
	var views topology.Views
	if h.src.Views != nil {
		views = h.src.Views()
	}
	g := topology.Build(snap, views)
	return g, &reading{at: at, snap: snap, counters: nodeCounters(g, snap, views)}, views, nil
}

// Build returns the data of one poll.
func (h *Handler) Build(ctx context.Context) (*Data, error) {
	g, r, _, err := h.graph(ctx)
	if err != nil {
		return nil, err
	}
	_, key, err := DOT(g)
	if err != nil {
		return nil, err
	}
	cur, base := h.history.add(r)
	d := &Data{Time: cur.at, Layout: key, RefreshSeconds: h.opts.Refresh.Seconds(),
		Nodes: make([]NodeData, len(g.Nodes)), Edges: make([]EdgeData, len(g.Edges))}
	var secs float64
	if base != nil {
		secs = cur.at.Sub(base.at).Seconds()
		d.WindowSeconds = secs
	}
	traffic := func(id string) *Traffic {
		if base == nil {
			return nil
		}
		from, ok1 := base.counters[id]
		to, ok2 := cur.counters[id]
		if !ok1 || !ok2 {
			return nil
		}
		return rate(from, to, secs)
	}
	for i, n := range g.Nodes {
		d.Nodes[i] = NodeData{Node: n, Traffic: traffic(n.ID)}
	}
	via := edgeVia(g, cur.counters)
	for i, e := range g.Edges {
		d.Edges[i] = EdgeData{Edge: e}
		if v, ok := via[e.ID]; ok {
			if t := traffic(v); t != nil {
				t.Via = v
				d.Edges[i].Traffic = t
			}
		}
	}
	return d, nil
}

func (h *Handler) serveData(w http.ResponseWriter, r *http.Request) {
	d, err := h.Build(r.Context())
	if err != nil {
		h.fail(w, "topology data", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(d); err != nil {
		h.opts.Logger.Debug("write topology data", "err", err)
	}
}

func (h *Handler) serveSVG(w http.ResponseWriter, r *http.Request) {
	g, _, _, err := h.graph(r.Context())
	if err != nil {
		h.fail(w, "topology svg", err)
		return
	}
	svg, key, err := h.render.SVG(r.Context(), g)
	if err != nil {
		h.fail(w, "topology svg", err)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Nta-Layout", key)
	_, _ = w.Write(svg)
}

func (h *Handler) fail(w http.ResponseWriter, what string, err error) {
	h.opts.Logger.Warn("cannot serve "+what, "err", err)
	http.Error(w, fmt.Sprintf("%s: %v — see the exporter's log", what, err), http.StatusServiceUnavailable)
}
