package ovsview

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
)

// DefaultDB is ovsdb-server's socket on Debian and most distributions.
const DefaultDB = "unix:/var/run/openvswitch/db.sock"

// Options configure a Watcher.
type Options struct {
	// DB is the OVSDB endpoint: "unix:PATH" (or a plain absolute path) or
	// "tcp:HOST:PORT". Default DefaultDB.
	DB string
	// Timeout bounds each call to ovsdb-server (connect, monitor, echo).
	// Default 5s.
	Timeout time.Duration
	// Resync is how often the watcher checks that ovsdb-server answers
	// (echo) and rebuilds the topology from the cache in case an update was
	// dropped. Default 30s.
	Resync time.Duration
	Logger *slog.Logger
}

// Watcher keeps the cached view. Run connects and monitors; View reads.
type Watcher struct {
	opts     Options
	endpoint string
	log      *slog.Logger
	dbModel  model.ClientDBModel

	mu      sync.Mutex
	client  client.Client // nil while disconnected
	topo    *View
	downErr error // why the view is unavailable
	warned  bool  // the current outage has been logged
	skipped uint64

	dirty atomic.Bool

	closeOnce sync.Once
	closed    chan struct{}
}

// New validates opts and returns a watcher; call Run to connect.
func New(opts Options) (*Watcher, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	ep, err := Endpoint(opts.DB)
	if err != nil {
		return nil, err
	}
	m, err := clientModel()
	if err != nil {
		return nil, fmt.Errorf("OVSDB model: %w", err)
	}
	return &Watcher{
		opts: opts, endpoint: ep, log: opts.Logger, dbModel: m,
		downErr: fmt.Errorf("%w: not connected yet to %s", ErrUnavailable, ep),
		closed:  make(chan struct{}),
	}, nil
}

// Endpoint normalizes an OVSDB endpoint flag: "" is DefaultDB, an absolute
// path is a unix socket, "unix:PATH" and "tcp:HOST:PORT" are taken as they
// are. Anything else is an error saying what is accepted.
func Endpoint(s string) (string, error) {
	switch {
	case s == "":
		return DefaultDB, nil
	case strings.HasPrefix(s, "/"):
		return "unix:" + s, nil
	case strings.HasPrefix(s, "unix:") && len(s) > len("unix:"):
		return s, nil
	case strings.HasPrefix(s, "tcp:"):
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(s, "tcp:")); err != nil {
			return "", fmt.Errorf("OVSDB endpoint %q: want tcp:HOST:PORT (%v)", s, err)
		}
		return s, nil
	}
	return "", fmt.Errorf("OVSDB endpoint %q: use unix:/path/to/db.sock, /path/to/db.sock or tcp:HOST:PORT", s)
}

// DB returns the endpoint the watcher connects to.
func (w *Watcher) DB() string { return w.endpoint }

// Close stops Run and disconnects.
func (w *Watcher) Close() {
	w.closeOnce.Do(func() { close(w.closed) })
}

// Run connects, monitors and reconnects until ctx ends or Close is called.
func (w *Watcher) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-w.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		monitored, err := w.session(ctx)
		if ctx.Err() != nil {
			break
		}
		w.setDown(err)
		if monitored { // a new outage: retry soon, then back off again
			backoff = 250 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	w.mu.Lock()
	w.client, w.topo = nil, nil
	w.downErr = fmt.Errorf("%w: watcher stopped", ErrUnavailable)
	w.mu.Unlock()
}

// session is one connection's life: it returns why it ended, and whether
// the monitor was up.
func (w *Watcher) session(ctx context.Context) (monitored bool, _ error) {
	lg := logr.FromSlogHandler(debugOnly{w.log.With("lib", "libovsdb").Handler()})
	c, err := client.NewOVSDBClient(w.dbModel, client.WithEndpoint(w.endpoint), client.WithLogger(&lg))
	if err != nil {
		return false, fmt.Errorf("OVSDB client for %s: %w", w.endpoint, err)
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	err = c.Connect(cctx)
	cancel()
	if err != nil {
		return false, fmt.Errorf("connect to OVSDB at %s: %w", w.endpoint, err)
	}
	// The handler is registered before the monitor starts, so the initial
	// rows are seen too.
	c.Cache().AddEventHandler(&events{w: w})
	mctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	_, err = c.Monitor(mctx, c.NewMonitor(
		table(&ovsRoot{}), table(&ovsBridge{}), table(&ovsController{}),
		table(&ovsPort{}), table(&ovsInterface{}),
	))
	cancel()
	if err != nil {
		return false, fmt.Errorf("monitor OVSDB at %s: %w", w.endpoint, err)
	}
	w.setUp(c)
	defer w.clearClient(c)
	t := time.NewTicker(w.opts.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-c.DisconnectNotify():
			return true, fmt.Errorf("OVSDB at %s closed the connection", w.endpoint)
		case <-t.C:
			ectx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
			err := c.Echo(ectx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("OVSDB at %s did not answer echo within %s (hung ovsdb-server?): %w", w.endpoint, w.opts.Timeout, err)
			}
			w.dirty.Store(true) // an update dropped by libovsdb's full event buffer is caught here
		}
	}
}

// table monitors m's table, asking for just the columns the model has.
func table(m model.Model) client.MonitorOption { return client.WithTable(m, columns(m)...) }

// columns returns pointers to every field of m but _uuid.
func columns(m model.Model) []any {
	v := reflect.ValueOf(m).Elem()
	var out []any
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("ovsdb") == "_uuid" {
			continue
		}
		out = append(out, v.Field(i).Addr().Interface())
	}
	return out
}

func (w *Watcher) setUp(c client.Client) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.warned {
		w.log.Info("OVSDB reachable again", "db", w.endpoint)
	}
	w.client, w.topo, w.downErr, w.warned = c, nil, nil, false
	w.dirty.Store(true)
}

func (w *Watcher) clearClient(c client.Client) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.client == c {
		w.client, w.topo = nil, nil
	}
}

// setDown records why the view is unavailable; the first failure of an
// outage is logged at warn with what to do, the rest at debug.
func (w *Watcher) setDown(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.client, w.topo = nil, nil
	w.downErr = fmt.Errorf("%w: %w", ErrUnavailable, err)
	if w.warned {
		w.log.Debug("OVSDB still unreachable", "db", w.endpoint, "err", err)
		return
	}
	w.warned = true
	w.log.Warn("OVSDB unreachable: OVS bridges, ports and counters are not exported until it is back (reconnecting with backoff). Start Open vSwitch (ovs-ctl start), point --collector.ovs.db at its socket, or disable the collector with --no-collector.ovs",
		"db", w.endpoint, "err", err)
}

// View returns the current view with the interfaces' latest statistics, or
// an error wrapping ErrUnavailable. It never calls ovsdb-server.
func (w *Watcher) View() (View, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.client == nil {
		return View{}, w.downErr
	}
	tc := w.client.Cache()
	if tc == nil {
		return View{}, fmt.Errorf("%w: no cache yet", ErrUnavailable)
	}
	if w.dirty.Swap(false) || w.topo == nil {
		v, skipped := build(cachedRows(tc), w.log)
		w.skipped += uint64(skipped)
		w.topo = &v
	}
	v := withStats(w.topo, shallow(tc, tableInterface))
	v.Skipped = w.skipped
	return v, nil
}

func cachedRows(tc *cache.TableCache) rows {
	return rows{
		root:        shallow(tc, tableRoot),
		bridges:     shallow(tc, tableBridge),
		controllers: shallow(tc, tableController),
		ports:       shallow(tc, tablePort),
		ifaces:      shallow(tc, tableInterface),
	}
}

func shallow(tc *cache.TableCache, table string) map[string]model.Model {
	t := tc.Table(table)
	if t == nil {
		return nil
	}
	return t.RowsShallow()
}

// events marks the topology for rebuild on any change but a new value of
// the statistics column (read at View time anyway).
type events struct{ w *Watcher }

func (e *events) OnAdd(string, model.Model)    { e.w.dirty.Store(true) }
func (e *events) OnDelete(string, model.Model) { e.w.dirty.Store(true) }
func (e *events) OnUpdate(table string, old, new model.Model) {
	if table == tableInterface {
		o, ok1 := old.(*ovsInterface)
		n, ok2 := new.(*ovsInterface)
		if ok1 && ok2 && statsOnly(o, n) {
			return
		}
	}
	e.w.dirty.Store(true)
}

// statsOnly reports whether two versions of an interface row differ at most
// in their statistics.
func statsOnly(a, b *ovsInterface) bool {
	x, y := *a, *b
	x.Statistics, y.Statistics = nil, nil
	return reflect.DeepEqual(x, y)
}

// debugOnly passes libovsdb's log lines on at debug level at most: its
// errors (a failed reconnect, a row it could not map) are the watcher's to
// report, once, in its own words.
type debugOnly struct{ slog.Handler }

func (h debugOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, min(l, slog.LevelDebug))
}

func (h debugOnly) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug {
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h debugOnly) WithAttrs(a []slog.Attr) slog.Handler { return debugOnly{h.Handler.WithAttrs(a)} }
func (h debugOnly) WithGroup(g string) slog.Handler      { return debugOnly{h.Handler.WithGroup(g)} }
