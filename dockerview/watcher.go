package dockerview

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"golang.org/x/sync/errgroup"
)

// dockerAPI is the part of the Docker Engine API client the watcher uses.
type dockerAPI interface {
	Ping(ctx context.Context) (types.Ping, error)
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
	Close() error
}

var _ dockerAPI = (*client.Client)(nil)

// Backoff bounds between reconnection attempts.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	// inspectParallelism bounds concurrent inspects during a full sync.
	inspectParallelism = 4
)

// stateUp is Watcher.state while the engine is reachable and synced; any
// other non-empty value is the kind of unavailability.
const stateUp = "up"

// snapshot is an immutable published state: a view or an error.
type snapshot struct {
	view View
	err  error
}

// Watcher keeps a cached [View] of a Docker engine current. Create it with
// [New], start [Watcher.Run] in a goroutine, read with [Watcher.View].
type Watcher struct {
	api     dockerAPI
	host    string
	resync  time.Duration
	timeout time.Duration
	log     *slog.Logger

	// Reconnection backoff bounds; tests shorten them.
	minBackoff, maxBackoff time.Duration

	snap atomic.Pointer[snapshot]

	stop       context.Context // cancelled by Close
	cancelStop context.CancelFunc
	runMu      sync.Mutex
	running    chan struct{} // closed when the active Run returns; nil when none
	closeOnce  sync.Once
	closeErr   error

	// Owned by the goroutine executing Run.
	nets       map[string]Network   // by id
	ctrs       map[string]Container // by id
	synced     time.Time
	state      string // "", stateUp or the kind of unavailability
	downLogged bool   // the current down state has been logged
	downSince  time.Time
}

// New builds a Watcher and its Docker client without doing any I/O. The API
// version is negotiated with the engine on first contact, so old engines
// (Debian's 20.10 speaks API 1.41) work.
func New(o Options) (*Watcher, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if o.Host != "" {
		opts = append(opts, client.WithHost(o.Host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %q: %w — check DOCKER_HOST / the --collector.docker.host value", o.Host, err)
	}
	return newWatcher(cli, cli.DaemonHost(), o), nil
}

// newWatcher builds a Watcher around any dockerAPI (the fake in tests).
func newWatcher(api dockerAPI, host string, o Options) *Watcher {
	w := &Watcher{
		api:        api,
		host:       host,
		resync:     o.Resync,
		timeout:    o.Timeout,
		log:        o.Logger,
		minBackoff: minBackoff,
		maxBackoff: maxBackoff,
	}
	if w.resync <= 0 {
		w.resync = DefaultResync
	}
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.stop, w.cancelStop = context.WithCancel(context.Background())
	return w
}

// Host returns the engine address in use, e.g. unix:///var/run/docker.sock.
func (w *Watcher) Host() string { return w.host }

// View returns a copy of the cached view; the caller may modify it freely.
// While the engine is unreachable, before the first sync and after Run has
// returned it returns an empty View and an error wrapping [ErrUnavailable]
// that says what to do.
func (w *Watcher) View() (View, error) {
	s := w.snap.Load()
	if s == nil {
		return View{}, errNotSynced()
	}
	if s.err != nil {
		return View{}, s.err
	}
	return s.view.clone(), nil
}

// Close stops a running Run, waits for it to return and releases the
// client. It is safe to call more than once.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		w.cancelStop()
		w.runMu.Lock()
		done := w.running
		w.runMu.Unlock()
		if done != nil {
			<-done
		}
		w.closeErr = w.api.Close()
	})
	return w.closeErr
}

// Run keeps the view current until ctx is cancelled or Close is called:
// a full sync, then the event stream plus a full resync every
// Options.Resync. When the engine goes away the view becomes unavailable and
// Run reconnects with exponential backoff (1s doubling to 30s), doing a full
// sync after each reconnect. A hung engine is noticed at the latest at the
// next resync, since every API call has the Options.Timeout deadline. Only
// one Run may be active at a time; a second concurrent call returns at once.
func (w *Watcher) Run(ctx context.Context) {
	w.runMu.Lock()
	if w.running != nil || w.stop.Err() != nil {
		w.runMu.Unlock()
		w.log.Warn("dockerview: Run called while already running or after Close; ignored")
		return
	}
	done := make(chan struct{})
	w.running = done
	w.runMu.Unlock()
	defer func() {
		w.snap.Store(&snapshot{err: &unavailableError{kind: kindStopped, msg: "the docker watcher has stopped (Run returned)"}})
		w.runMu.Lock()
		w.running = nil
		close(done)
		w.runMu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(w.stop, cancel)()

	backoff := w.minBackoff
	for {
		start := time.Now()
		synced, err := w.session(ctx)
		if ctx.Err() != nil {
			return
		}
		w.markDown(err)
		// Start again from the shortest delay only after a session that
		// worked for a while, so an engine that accepts and then drops every
		// connection is not retried (and logged) in a tight loop.
		if synced && time.Since(start) >= w.maxBackoff {
			backoff = w.minBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, w.maxBackoff)
	}
}

// callCtx returns the context of one API call: ctx with the per-call deadline.
func (w *Watcher) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, w.timeout)
}

// fullSync re-lists networks and containers, inspects every container and
// replaces the cache with the result; the caller publishes it.
func (w *Watcher) fullSync(ctx context.Context) error {
	nets, err := w.listNetworks(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := w.callCtx(ctx)
	list, err := w.api.ContainerList(cctx, container.ListOptions{All: true})
	cancel()
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	ctrs := make(map[string]Container, len(list))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inspectParallelism)
	for _, s := range list {
		g.Go(func() error {
			c, found, err := w.inspect(gctx, s.ID)
			if err != nil || !found {
				return err
			}
			mu.Lock()
			ctrs[c.ID] = c
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	w.nets, w.ctrs, w.synced = nets, ctrs, time.Now()
	return nil
}

// listNetworks lists all networks, keyed by id.
func (w *Watcher) listNetworks(ctx context.Context) (map[string]Network, error) {
	cctx, cancel := w.callCtx(ctx)
	defer cancel()
	list, err := w.api.NetworkList(cctx, network.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	nets := make(map[string]Network, len(list))
	for _, n := range list {
		nets[n.ID] = networkFromAPI(n)
	}
	return nets, nil
}

// inspect fetches one container; found is false when it no longer exists.
func (w *Watcher) inspect(ctx context.Context, id string) (c Container, found bool, err error) {
	cctx, cancel := w.callCtx(ctx)
	defer cancel()
	r, err := w.api.ContainerInspect(cctx, id)
	if cerrdefs.IsNotFound(err) {
		return Container{}, false, nil
	}
	if err != nil {
		return Container{}, false, fmt.Errorf("inspect container %.12s: %w", id, err)
	}
	c = containerFromAPI(r)
	if c.ID == "" {
		c.ID = id
	}
	return c, true, nil
}

// publish stores a new immutable view built from the cache.
func (w *Watcher) publish() {
	w.snap.Store(&snapshot{view: buildView(w.nets, w.ctrs, w.synced)})
}

// markUp records a successful (re)connection and logs the transition.
func (w *Watcher) markUp(apiVersion string) {
	if w.state != stateUp {
		attrs := []any{"host", w.host, "api_version", apiVersion,
			"networks", len(w.nets), "containers", len(w.ctrs)}
		if !w.downSince.IsZero() {
			attrs = append(attrs, "unavailable_for", time.Since(w.downSince).Round(time.Millisecond))
		}
		w.log.Info("docker engine available", attrs...)
	}
	w.state, w.downLogged, w.downSince = stateUp, false, time.Time{}
}

// markDown publishes the unavailability and logs it once per change of
// cause. A closed event stream is not logged on its own: the next attempt
// either reconnects (a dockerd restart) or tells why the engine is gone.
func (w *Watcher) markDown(err error) {
	ue := diagnose(err, w.host, w.timeout)
	w.nets, w.ctrs = nil, nil
	w.snap.Store(&snapshot{err: ue})
	if w.state == stateUp || w.state == "" {
		w.downSince = time.Now()
		w.downLogged = false
		if w.state == stateUp && ue.kind == kindStream {
			w.state = ue.kind
			return
		}
	}
	if w.state != ue.kind || !w.downLogged {
		w.log.Warn("docker engine unavailable", "host", w.host, "reason", ue.msg, "err", ue.err)
		w.downLogged = true
	}
	w.state = ue.kind
}
