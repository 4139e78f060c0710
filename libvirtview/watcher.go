package libvirtview

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure a Watcher. Zero fields take the defaults below.
type Options struct {
	// Socket is libvirtd's RPC unix socket. Default /var/run/libvirt/libvirt-sock.
	Socket string
	// URI is the connection URI. Default qemu:///system.
	URI string
	// Timeout bounds every call to libvirtd (go-libvirt has no deadlines
	// of its own): a call that takes longer drops the connection, which is
	// then re-dialed. Default 5s.
	Timeout time.Duration
	// Resync is how often everything is re-listed besides the events.
	// Default 30s.
	Resync time.Duration
	// Logger receives one line per state change. Default: discard.
	Logger *slog.Logger

	// dial replaces go-libvirt in tests.
	dial func(ctx context.Context) (client, error)
}

// Defaults of Options.
const (
	DefaultSocket  = "/var/run/libvirt/libvirt-sock"
	DefaultURI     = "qemu:///system"
	DefaultTimeout = 5 * time.Second
	DefaultResync  = 30 * time.Second
)

// Reconnect backoff bounds.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// Stats break down the input the watcher could not use as given. None of
// it fails a view. Counts are cumulative since New and count every read,
// so a domain that stays broken adds one per resync.
type Stats struct {
	// ParseErrors counts domain and network XML that did not parse; the
	// object is kept with what the list said (Domain.Partial).
	ParseErrors uint64
	// ReadErrors counts per-object calls (XML, state, leases) that libvirtd
	// answered with an error other than "no such domain/network".
	ReadErrors uint64
	// Vanished counts domains and networks gone between list and read
	// (transient domains being destroyed): a lost race, not bad input.
	Vanished uint64
	// DuplicateNICs counts NICs left out because their Key repeated an
	// earlier NIC's of the same domain (or was empty).
	DuplicateNICs uint64
	// NICsWithoutTarget counts NICs of running domains without <target dev>
	// although their type normally has one (bridge, network, ethernet,
	// direct); they are kept, keyed by alias or MAC.
	NICsWithoutTarget uint64
}

// counters are the Stats, updated by the Run goroutine, read by any.
type counters struct {
	parseErrors, readErrors, vanished, duplicateNICs, nicsWithoutTarget atomic.Uint64
}

// Watcher keeps the cached view. Run it in a goroutine; View is safe from
// any goroutine and never waits on libvirtd.
type Watcher struct {
	opts   Options
	log    *slog.Logger
	stats  counters
	parsed parseCache // owned by the Run goroutine

	mu       sync.Mutex
	domains  map[string]Domain // by UUID
	networks map[string]Network
	synced   time.Time
	up       bool
	lastErr  error
	logged   string // the outage's last error, "" while up: an outage is one warning

	closeOnce sync.Once
	closed    chan struct{}
	running   sync.Mutex // held by the active Run; Close waits for it
}

// New checks opts and returns a Watcher; nothing is dialed before Run.
func New(opts Options) (*Watcher, error) {
	if opts.Socket == "" {
		opts.Socket = DefaultSocket
	}
	if opts.URI == "" {
		opts.URI = DefaultURI
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Resync == 0 {
		opts.Resync = DefaultResync
	}
	switch {
	case opts.Timeout < 10*time.Millisecond:
		return nil, fmt.Errorf("libvirt timeout %s: use at least 10ms", opts.Timeout)
	case opts.Resync < time.Second:
		return nil, fmt.Errorf("libvirt resync %s: use at least 1s", opts.Resync)
	case !strings.Contains(opts.URI, "://"):
		return nil, fmt.Errorf("libvirt URI %q: use a URI such as qemu:///system", opts.URI)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{opts: opts, log: opts.Logger, closed: make(chan struct{}),
		lastErr: errors.New("not connected yet")}
	if w.opts.dial == nil {
		w.opts.dial = w.dialLibvirt
	}
	return w, nil
}

// Close stops Run and waits until it has returned and dropped its
// connection (at most about Options.Timeout). Safe to call more than once.
func (w *Watcher) Close() {
	w.closeOnce.Do(func() { close(w.closed) })
	w.running.Lock()
	defer w.running.Unlock()
}

// Stats returns the counters of unusable input, also while libvirtd is
// unavailable.
func (w *Watcher) Stats() Stats {
	return Stats{
		ParseErrors:       w.stats.parseErrors.Load(),
		ReadErrors:        w.stats.readErrors.Load(),
		Vanished:          w.stats.vanished.Load(),
		DuplicateNICs:     w.stats.duplicateNICs.Load(),
		NICsWithoutTarget: w.stats.nicsWithoutTarget.Load(),
	}
}

// View returns a copy of the cache, or an error wrapping ErrUnavailable
// while libvirtd cannot be reached or has not answered the first list.
// It never waits on libvirtd.
func (w *Watcher) View() (View, error) {
	st := w.Stats()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.up {
		return View{}, fmt.Errorf("%w: %w — %s; VMs are left out until it answers",
			ErrUnavailable, w.lastErr, hint(w.lastErr, w.opts.Socket))
	}
	v := View{Synced: w.synced, ParseErrors: st.ParseErrors + st.ReadErrors + st.DuplicateNICs,
		Domains: make([]Domain, 0, len(w.domains)), Networks: make([]Network, 0, len(w.networks))}
	for _, d := range w.domains {
		d.NICs = slices.Clone(d.NICs)
		v.Domains = append(v.Domains, d)
	}
	for _, n := range w.networks {
		n.Addresses, n.DHCPRanges, n.Leases = slices.Clone(n.Addresses), slices.Clone(n.DHCPRanges), slices.Clone(n.Leases)
		v.Networks = append(v.Networks, n)
	}
	slices.SortFunc(v.Domains, func(a, b Domain) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.UUID, b.UUID)
	})
	slices.SortFunc(v.Networks, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	return v, nil
}

// errStopped is View's error after Run has returned.
var errStopped = errors.New("the libvirt watcher has stopped (Run returned)")

// hint says what to do about the error that made libvirt unavailable.
func hint(err error, socket string) string {
	switch {
	case errors.Is(err, errStopped):
		return "run Watcher.Run (the exporter is shutting down)"
	case errors.Is(err, errTimeout):
		return "libvirtd is hung or overloaded: the connection was dropped and is re-dialed; check libvirtd's log"
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EACCES):
		return fmt.Sprintf("permission denied on %s: run as root or add the user to group libvirt", socket)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens on %s (stale socket): start libvirtd (libvirtd -d)", socket)
	case errors.Is(err, errClosed):
		return "libvirtd stopped or restarted: reconnecting; start libvirtd (libvirtd -d) if it stays down"
	case isLibvirtError(err):
		return fmt.Sprintf("libvirtd refused the connection: check --collector.libvirt.uri and libvirtd's log (socket %s)", socket)
	}
	return fmt.Sprintf("start libvirtd (libvirtd -d), or check --collector.libvirt.socket (%s)", socket)
}

// Run keeps the view current until ctx is done or Close is called: dial,
// subscribe to events, list everything, then follow events with a periodic
// resync; on any error (libvirtd stopped or restarting, a call past its
// deadline) drop the client, back off (250ms doubling to 10s) and start
// over on a fresh one. A second Run while one is active waits for it.
func (w *Watcher) Run(ctx context.Context) {
	w.running.Lock()
	defer w.running.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-w.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer w.setDown(errStopped, false)
	backoff := minBackoff
	for ctx.Err() == nil {
		began := time.Now()
		err := w.session(ctx)
		if ctx.Err() != nil {
			return
		}
		w.setDown(err, true)
		if time.Since(began) > maxBackoff {
			backoff = minBackoff // the session was up for a while: retry soon
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// setUp marks the view synced and logs the recovery once.
func (w *Watcher) setUp(domains, networks int) {
	w.mu.Lock()
	was := w.up
	w.up, w.lastErr = true, nil
	w.logged = ""
	w.mu.Unlock()
	if !was {
		w.log.Info("libvirt view synced", "socket", w.opts.Socket, "domains", domains, "networks", networks)
	}
}

// setDown marks the view unavailable; with logIt it logs the outage once
// (at warn) and the retries' errors at debug.
func (w *Watcher) setDown(err error, logIt bool) {
	if err == nil {
		err = errors.New("session ended")
	}
	w.mu.Lock()
	was := w.up
	w.up, w.lastErr = false, err
	first := w.logged == ""
	w.logged = err.Error()
	w.domains, w.networks = nil, nil
	w.mu.Unlock()
	if !logIt {
		return
	}
	if !was && !first {
		w.log.Debug("libvirt still unavailable", "err", err) // one warning per outage
		return
	}
	w.log.Warn("libvirt unavailable, VMs are left out until it answers; retrying",
		"socket", w.opts.Socket, "err", err, "hint", hint(err, w.opts.Socket))
}
