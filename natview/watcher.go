//go:build linux

package natview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"
)

// Backoff bounds between reconnection attempts after a failure other than
// a receive error (a receive error re-dials at once).
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	// refreshEvery bounds how often the resolver is asked for endpoints
	// between dumps, so a new container's connections are attributed soon.
	refreshEvery = 2 * time.Second
	// eventQueue is the channel between the event socket and the table.
	// Each queued event holds a decoded Flow (~500 B), so it stays short
	// (2 MiB at most); the socket's receive buffer (--collector.nat.read-buffer)
	// is what absorbs a burst while a dump runs.
	eventQueue = 1 << 12
)

// Watcher keeps the conntrack view current. Create it with [New], run
// [Watcher.Run] in a goroutine, read with [Watcher.Snapshot].
type Watcher struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	tab     *table
	err     error // why the view is unavailable, nil when up
	synced  bool
	dumped  bool // a dump has completed: later sessions' dumps are repairs
	refresh time.Time
	// downLogged is the outage last logged, "" while up (Run's goroutine only).
	downLogged string
	// unfiltered is set when the kernel ignores status filters in dumps.
	unfiltered bool
	endpoint   string // fingerprint of the last endpoints installed
	acctWarn   bool
}

// New checks the options and returns a Watcher; it does no I/O besides
// setting nf_conntrack_acct when Options.Accounting asks for it.
func New(o Options) (*Watcher, error) {
	if o.Resolver == nil {
		return nil, errors.New("natview: Options.Resolver is required")
	}
	if o.ProcPath == "" {
		o.ProcPath = "/proc"
	}
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	if o.PeerBudget <= 0 {
		o.PeerBudget = DefaultPeerBudget
	}
	if o.ReadBuffer <= 0 {
		o.ReadBuffer = DefaultReadBuffer
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	w := &Watcher{o: o, log: o.Logger, tab: newTable(o.PeerBudget)}
	if o.Accounting {
		if err := os.WriteFile(w.sysctl("nf_conntrack_acct"), []byte("1\n"), 0); err != nil {
			return nil, fmt.Errorf("set net.netfilter.nf_conntrack_acct=1 (--collector.nat.accounting): %w — run as root with nf_conntrack loaded (modprobe nf_conntrack), or leave the flag off", err)
		}
		w.log.Info("conntrack accounting enabled", "sysctl", "net.netfilter.nf_conntrack_acct=1")
	}
	return w, nil
}

func (w *Watcher) sysctl(name string) string {
	return filepath.Join(w.o.ProcPath, "sys/net/netfilter", name)
}

// readSysctl returns a /proc/sys/net/netfilter value, or -1 when unreadable.
func (w *Watcher) readSysctl(name string) float64 {
	b, err := os.ReadFile(w.sysctl(name))
	if err != nil {
		return -1
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		return -1
	}
	return v
}

// Snapshot returns the current series and health, or an error wrapping
// [ErrUnavailable] while conntrack cannot be read. The table counts on
// through an outage; a snapshot after it carries on from where it was.
func (w *Watcher) Snapshot() (Snapshot, error) {
	entries, limit := w.readSysctl("nf_conntrack_count"), w.readSysctl("nf_conntrack_max")
	acct := w.readSysctl("nf_conntrack_acct") == 1
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return Snapshot{}, w.err
	}
	if !w.synced {
		return Snapshot{}, fmt.Errorf("%w: the first conntrack dump has not completed yet", ErrUnavailable)
	}
	s := w.tab.snapshot()
	s.Health.Entries, s.Health.Limit, s.Health.Accounting = entries, limit, acct
	return s, nil
}

// Run keeps the view current until ctx is cancelled: a session (event
// socket, dump, events and periodic re-dumps) that ends on any receive
// error, after which it re-dials and re-dumps at once; other failures
// (module missing, no permission) are retried with backoff and logged once.
func (w *Watcher) Run(ctx context.Context) {
	backoff := minBackoff
	for ctx.Err() == nil {
		err := w.session(ctx)
		if ctx.Err() != nil {
			return
		}
		var recv *receiveError
		if errors.As(err, &recv) {
			w.mu.Lock()
			w.tab.health.ReceiveErrors++
			w.mu.Unlock()
			w.log.Debug("conntrack events lost; re-dumping", "err", err)
			backoff = minBackoff
			continue
		}
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
		if msg := err.Error(); msg != w.downLogged {
			w.log.Warn("conntrack unavailable; NAT metrics paused", "err", err, "retry", backoff)
			w.downLogged = msg
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// receiveError ends a session that lost events.
type receiveError struct{ err error }

func (e *receiveError) Error() string { return "conntrack event socket: " + e.err.Error() }
func (e *receiveError) Unwrap() error { return e.err }

// dialError says what to do when ctnetlink cannot be opened.
func (w *Watcher) dialError(what string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %s: %w — needs CAP_NET_ADMIN: run as root or grant it", ErrUnavailable, what, err)
	case w.readSysctl("nf_conntrack_max") < 0:
		return fmt.Errorf("%w: %s: %w — nf_conntrack is not loaded: modprobe nf_conntrack (Docker's NAT loads it)", ErrUnavailable, what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// session runs one event socket: Listen first, so nothing that happens
// during the dump is missed (the table resolves the overlap), then dump, then
// apply events and re-dump every Resync.
func (w *Watcher) session(ctx context.Context) error {
	if w.readSysctl("nf_conntrack_max") < 0 {
		return fmt.Errorf("%w: %s missing — nf_conntrack is not loaded: modprobe nf_conntrack (Docker's NAT loads it)", ErrUnavailable, w.sysctl("nf_conntrack_max"))
	}
	lc, err := conntrack.Dial(nil)
	if err != nil {
		return w.dialError("dial ctnetlink", err)
	}
	if err := lc.SetReadBuffer(w.o.ReadBuffer); err != nil {
		w.log.Debug("conntrack read buffer not set", "bytes", w.o.ReadBuffer, "err", err)
	}
	events := make(chan conntrack.Event, eventQueue)
	errs, err := lc.Listen(events, 1, []netfilter.NetlinkGroup{netfilter.GroupCTNew, netfilter.GroupCTUpdate, netfilter.GroupCTDestroy})
	if err != nil {
		lc.Close()
		return w.dialError("listen to conntrack events", err)
	}
	defer closeListener(lc, events, errs)
	dc, err := dialDumper()
	if err != nil {
		return w.dialError("dial ctnetlink for dumps", err)
	}
	defer dc.Close()

	if err := w.dump(dc, !w.dumped); err != nil {
		return err
	}
	w.mu.Lock()
	w.err = nil
	w.mu.Unlock()
	if w.downLogged != "" {
		w.log.Info("conntrack available again; NAT metrics resumed")
		w.downLogged = ""
	}
	tick := time.NewTicker(w.o.Resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			w.apply(ev)
		case err := <-errs:
			w.applyQueued(events)
			return &receiveError{err}
		case <-tick.C:
			if err := w.drain(events, errs); err != nil {
				return err
			}
			if err := w.dump(dc, false); err != nil {
				return err
			}
		}
	}
}

// drain applies the events already queued, so a dump races only with
// those that happen while it runs.
func (w *Watcher) drain(events <-chan conntrack.Event, errs <-chan error) error {
	for {
		select {
		case ev := <-events:
			w.apply(ev)
		case err := <-errs:
			w.applyQueued(events)
			return &receiveError{err}
		default:
			return nil
		}
	}
}

// applyQueued applies the events still queued when the socket failed: the
// library's worker has stopped after reporting the error, so they are all
// from before it and would otherwise be lost with the socket.
func (w *Watcher) applyQueued(events <-chan conntrack.Event) {
	for {
		select {
		case ev := <-events:
			w.apply(ev)
		default:
			return
		}
	}
}

func (w *Watcher) apply(ev conntrack.Event) {
	if ev.Flow == nil {
		return
	}
	kind := evUpdate
	switch ev.Type {
	case conntrack.EventNew:
		kind = evNew
	case conntrack.EventDestroy:
		kind = evDestroy
	}
	w.maybeRefresh(false)
	w.mu.Lock()
	w.tab.event(kind, ev.Flow)
	w.mu.Unlock()
}

// maybeRefresh installs the resolver's endpoints when they changed, at
// most every refreshEvery unless forced.
func (w *Watcher) maybeRefresh(force bool) {
	now := time.Now()
	if !force && now.Sub(w.refresh) < refreshEvery {
		return
	}
	w.refresh = now
	e, err := w.o.Resolver.Endpoints()
	if err != nil {
		w.log.Debug("NAT attribution endpoints unavailable; keeping the last ones", "err", err)
		return
	}
	fp := fingerprint(e)
	w.mu.Lock()
	defer w.mu.Unlock()
	if fp != w.endpoint || w.tab.ix == nil {
		w.tab.setEndpoints(e)
		w.endpoint = fp
	}
}

// dump reads the NAT'd entries of the table (two dumps filtered by status
// in the kernel, or one of everything on kernels that do not filter) and
// applies them batch by batch as they stream in; a scrape meanwhile sees
// counters that are exact so far.
func (w *Watcher) dump(dc *dumper, first bool) error {
	begin := time.Now()
	w.maybeRefresh(true)
	w.mu.Lock()
	w.tab.beginDump(first)
	w.mu.Unlock()
	filters := natFilters[:]
	if w.unfiltered {
		filters = []statusFilter{{}}
	}
	for _, sf := range filters {
		err := dc.dump(sf, func(batch []conntrack.Flow) {
			w.mu.Lock()
			for i := range batch {
				if !sf.matches(batch[i].Status) && !w.unfiltered {
					// The kernel ignored the filter (before 5.17): it lists
					// everything, so one unfiltered dump will do from now on.
					w.unfiltered = true
					w.log.Debug("kernel does not filter conntrack dumps by status; dumping the whole table")
				}
				w.tab.dumped(&batch[i])
			}
			w.mu.Unlock()
		})
		if err != nil {
			return w.dialError("dump conntrack table", err)
		}
		if w.unfiltered {
			break // that dump listed everything
		}
	}
	w.mu.Lock()
	w.tab.endDump()
	w.tab.health.DumpDuration = time.Since(begin)
	w.synced, w.dumped = true, true
	w.mu.Unlock()
	if !w.acctWarn && w.readSysctl("nf_conntrack_acct") != 1 {
		w.acctWarn = true
		w.log.Warn("conntrack accounting is off: NAT metrics count connections only, no bytes or packets — enable it with sysctl -w net.netfilter.nf_conntrack_acct=1 or --collector.nat.accounting (counts connections opened after that)")
	}
	return nil
}

// closeListener closes the event socket while draining its channels: the
// library's worker blocks on a full event channel or an unread error.
func closeListener(lc *conntrack.Conn, events <-chan conntrack.Event, errs <-chan error) {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-events:
			case <-errs:
			case <-done:
				return
			}
		}
	}()
	lc.Close()
	close(done)
}
