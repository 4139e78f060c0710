package libvirtview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
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

// client is the part of go-libvirt the watcher calls; *libvirt.Libvirt
// implements it, a fake does in tests.
type client interface {
	ConnectListAllDomains(needResults int32, flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error)
	DomainGetState(dom libvirt.Domain, flags uint32) (int32, int32, error)
	DomainGetXMLDesc(dom libvirt.Domain, flags libvirt.DomainXMLFlags) (string, error)
	ConnectListAllNetworks(needResults int32, flags libvirt.ConnectListAllNetworksFlags) ([]libvirt.Network, uint32, error)
	NetworkGetXMLDesc(net libvirt.Network, flags uint32) (string, error)
	NetworkIsActive(net libvirt.Network) (int32, error)
	NetworkGetDhcpLeases(net libvirt.Network, mac libvirt.OptString, needResults int32, flags uint32) ([]libvirt.NetworkDhcpLease, uint32, error)
	LifecycleEvents(ctx context.Context) (<-chan libvirt.DomainEventLifecycleMsg, error)
	SubscribeEvents(ctx context.Context, id libvirt.DomainEventID, dom libvirt.OptDomain) (<-chan any, error)
	Disconnected() <-chan struct{}
	Disconnect() error
}

var _ client = (*libvirt.Libvirt)(nil)

// Watcher keeps the cached view. Run it in a goroutine; View is safe from
// any goroutine and never waits on libvirtd.
type Watcher struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	domains  map[string]Domain // by UUID
	networks map[string]Network
	synced   time.Time
	up       bool
	lastErr  error
	parseErr uint64
	logged   string // the outage's last error, "" while up: an outage is one warning

	closeOnce sync.Once
	closed    chan struct{}
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

// Close stops Run.
func (w *Watcher) Close() { w.closeOnce.Do(func() { close(w.closed) }) }

// View returns a copy of the cache, or an error wrapping ErrUnavailable
// while libvirtd cannot be reached or has not answered the first list.
func (w *Watcher) View() (View, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.up {
		return View{}, fmt.Errorf("%w: %w — start libvirtd (libvirtd -d), or check --collector.libvirt.socket (%s); VMs are left out until it answers",
			ErrUnavailable, w.lastErr, w.opts.Socket)
	}
	v := View{Synced: w.synced, ParseErrors: w.parseErr,
		Domains: make([]Domain, 0, len(w.domains)), Networks: make([]Network, 0, len(w.networks))}
	for _, d := range w.domains {
		d.NICs = slices.Clone(d.NICs)
		v.Domains = append(v.Domains, d)
	}
	for _, n := range w.networks {
		n.Addresses, n.DHCPRanges, n.Leases = slices.Clone(n.Addresses), slices.Clone(n.DHCPRanges), slices.Clone(n.Leases)
		v.Networks = append(v.Networks, n)
	}
	slices.SortFunc(v.Domains, func(a, b Domain) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(v.Networks, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	return v, nil
}

// Run keeps the view current until ctx is done or Close is called: dial,
// subscribe to events, list everything, then follow events with a periodic
// resync; on any error (libvirtd stopped or restarting, a call past its
// deadline) drop the client, back off and start over on a fresh one.
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
	backoff := minBackoff
	for ctx.Err() == nil {
		began := time.Now()
		err := w.session(ctx)
		if ctx.Err() != nil {
			return
		}
		w.setDown(err)
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

// session is one connection's life: it returns why it ended.
func (w *Watcher) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := w.opts.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Disconnect()
	lifecycle, err := call(ctx, w, func() (<-chan libvirt.DomainEventLifecycleMsg, error) { return c.LifecycleEvents(ctx) })
	if err != nil {
		return fmt.Errorf("subscribe to lifecycle events: %w", err)
	}
	var devices []<-chan any
	for _, id := range []libvirt.DomainEventID{libvirt.DomainEventIDDeviceAdded, libvirt.DomainEventIDDeviceRemoved} {
		ch, err := call(ctx, w, func() (<-chan any, error) { return c.SubscribeEvents(ctx, id, nil) })
		if err != nil {
			return fmt.Errorf("subscribe to device events: %w", err)
		}
		devices = append(devices, ch)
	}
	if err := w.sync(ctx, c); err != nil {
		return err
	}
	resync := time.NewTicker(w.opts.Resync)
	defer resync.Stop()
	for {
		var dom *libvirt.Domain
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.Disconnected():
			return errors.New("connection to libvirtd lost")
		case ev, ok := <-lifecycle:
			if !ok {
				return errors.New("lifecycle event stream ended")
			}
			dom = &ev.Dom
		case ev, ok := <-devices[0]:
			if !ok {
				return errors.New("device event stream ended")
			}
			dom = eventDomain(ev)
		case ev, ok := <-devices[1]:
			if !ok {
				return errors.New("device event stream ended")
			}
			dom = eventDomain(ev)
		case <-resync.C:
			if err := w.sync(ctx, c); err != nil {
				return err
			}
		}
		if dom != nil {
			if err := w.refreshDomain(ctx, c, *dom); err != nil {
				return err
			}
			// A domain that started or stopped changes leases and the
			// networks' bridges' ports: re-read the (few) networks.
			if err := w.refreshNetworks(ctx, c); err != nil {
				return err
			}
		}
	}
}

func eventDomain(ev any) *libvirt.Domain {
	switch e := ev.(type) {
	case *libvirt.DomainEventCallbackDeviceAddedMsg:
		return &e.Dom
	case *libvirt.DomainEventCallbackDeviceRemovedMsg:
		return &e.Msg.Dom
	}
	return nil
}

// dialLibvirt connects go-libvirt to the socket under the call deadline.
func (w *Watcher) dialLibvirt(ctx context.Context) (client, error) {
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(w.opts.Socket), dialers.WithLocalTimeout(w.opts.Timeout)))
	_, err := call(ctx, w, func() (struct{}, error) { return struct{}{}, l.ConnectToURI(libvirt.ConnectURI(w.opts.URI)) })
	if err != nil {
		l.Disconnect()
		return nil, fmt.Errorf("connect to %s at %s: %w", w.opts.URI, w.opts.Socket, err)
	}
	return l, nil
}

// errTimeout is a libvirt call past Options.Timeout.
var errTimeout = errors.New("libvirtd did not answer in time")

// call runs f under the watcher's deadline. On timeout it returns at once;
// the session then ends and its client is disconnected, which unblocks f.
func call[T any](ctx context.Context, w *Watcher, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	t := time.NewTimer(w.opts.Timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-t.C:
		var zero T
		return zero, fmt.Errorf("%w (%s)", errTimeout, w.opts.Timeout)
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// sync re-lists every domain and network and replaces the cache.
func (w *Watcher) sync(ctx context.Context, c client) error {
	doms, err := call(ctx, w, func() ([]libvirt.Domain, error) {
		d, _, err := c.ConnectListAllDomains(1, 0)
		return d, err
	})
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	domains := make(map[string]Domain, len(doms))
	for _, d := range doms {
		dom, ok, err := w.readDomain(ctx, c, d)
		if err != nil {
			return err
		}
		if ok {
			domains[dom.UUID] = dom
		}
	}
	networks, err := w.readNetworks(ctx, c)
	if err != nil {
		return err
	}
	fillBridges(domains, networks)
	w.mu.Lock()
	w.domains, w.networks, w.synced = domains, networks, time.Now()
	w.mu.Unlock()
	w.setUp(len(domains), len(networks))
	return nil
}

// refreshDomain re-reads one domain after an event; a domain gone meanwhile
// (a transient domain destroyed) leaves the cache.
func (w *Watcher) refreshDomain(ctx context.Context, c client, d libvirt.Domain) error {
	dom, ok, err := w.readDomain(ctx, c, d)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !ok {
		uuid := formatUUID(d.UUID)
		for k, cached := range w.domains {
			if k == uuid || (d.UUID == libvirt.UUID{} && cached.Name == d.Name) {
				delete(w.domains, k)
			}
		}
		return nil
	}
	m := map[string]Domain{dom.UUID: dom}
	fillBridges(m, w.networks)
	w.domains[dom.UUID] = m[dom.UUID]
	return nil
}

// readDomain reads a domain's state and live XML. ok is false (and the
// error nil) when the domain vanished or its XML cannot be read: that is
// logged at debug and counted, never a failed view. Errors are the
// connection's.
func (w *Watcher) readDomain(ctx context.Context, c client, d libvirt.Domain) (Domain, bool, error) {
	type sx struct {
		state int32
		xml   string
	}
	r, err := call(ctx, w, func() (sx, error) {
		st, _, err := c.DomainGetState(d, 0)
		if err != nil {
			return sx{}, err
		}
		x, err := c.DomainGetXMLDesc(d, 0)
		return sx{st, x}, err
	})
	switch {
	case err == nil:
	case isLibvirtError(err):
		// The domain vanished between list and read (libvirt's "no domain"),
		// or libvirtd refused this one: skip it, the rest is fine.
		w.log.Debug("domain left out", "domain", d.Name, "err", err)
		w.countParseError(libvirt.IsNotFound(err))
		return Domain{}, false, nil
	default:
		return Domain{}, false, fmt.Errorf("read domain %s: %w", d.Name, err)
	}
	dom, dups, err := parseDomain(r.xml, stateName(r.state))
	if err != nil {
		w.log.Debug("domain XML unreadable, left out", "domain", d.Name, "err", err)
		w.countParseError(false)
		return Domain{}, false, nil
	}
	if dups > 0 {
		w.log.Debug("domain NICs with a repeated or empty key left out", "domain", d.Name, "count", dups)
		w.mu.Lock()
		w.parseErr += uint64(dups)
		w.mu.Unlock()
	}
	return dom, true, nil
}

func (w *Watcher) countParseError(vanished bool) {
	if vanished {
		return // a lost race, not bad input
	}
	w.mu.Lock()
	w.parseErr++
	w.mu.Unlock()
}

// refreshNetworks re-reads every network into the cache.
func (w *Watcher) refreshNetworks(ctx context.Context, c client) error {
	networks, err := w.readNetworks(ctx, c)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.networks = networks
	fillBridges(w.domains, networks)
	return nil
}

func (w *Watcher) readNetworks(ctx context.Context, c client) (map[string]Network, error) {
	nets, err := call(ctx, w, func() ([]libvirt.Network, error) {
		n, _, err := c.ConnectListAllNetworks(1, 0)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make(map[string]Network, len(nets))
	for _, n := range nets {
		type rx struct {
			xml    string
			active bool
			leases []libvirt.NetworkDhcpLease
		}
		r, err := call(ctx, w, func() (rx, error) {
			x, err := c.NetworkGetXMLDesc(n, 0)
			if err != nil {
				return rx{}, err
			}
			act, err := c.NetworkIsActive(n)
			if err != nil || act == 0 {
				return rx{xml: x}, err
			}
			leases, _, err := c.NetworkGetDhcpLeases(n, nil, 1, 0)
			return rx{x, true, leases}, err
		})
		switch {
		case err == nil:
		case isLibvirtError(err):
			w.log.Debug("network left out", "network", n.Name, "err", err)
			w.countParseError(false)
			continue
		default:
			return nil, fmt.Errorf("read network %s: %w", n.Name, err)
		}
		net, err := parseNetwork(r.xml, r.active)
		if err != nil {
			w.log.Debug("network XML unreadable, left out", "network", n.Name, "err", err)
			w.countParseError(false)
			continue
		}
		for _, l := range r.leases {
			lease := Lease{IP: l.Ipaddr, Prefix: int(l.Prefix), Expiry: time.Unix(l.Expirytime, 0)}
			if len(l.Mac) > 0 {
				lease.MAC = strings.ToLower(l.Mac[0])
			}
			if len(l.Hostname) > 0 {
				lease.Hostname = l.Hostname[0]
			}
			net.Leases = append(net.Leases, lease)
		}
		out[net.Name] = net
	}
	return out, nil
}

// fillBridges gives type network NICs their network's bridge when the live
// XML did not name it.
func fillBridges(domains map[string]Domain, networks map[string]Network) {
	for uuid, d := range domains {
		changed := false
		for i := range d.NICs {
			n := &d.NICs[i]
			if n.Type == "network" && n.Bridge == "" {
				if net, ok := networks[n.Network]; ok && net.Bridge != "" {
					if !changed {
						d.NICs = slices.Clone(d.NICs)
						n = &d.NICs[i]
						changed = true
					}
					n.Bridge = net.Bridge
				}
			}
		}
		domains[uuid] = d
	}
}

func isLibvirtError(err error) bool {
	var e libvirt.Error
	return errors.As(err, &e)
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

// setDown marks the view unavailable and logs the outage once (at warn),
// the retries' errors at debug.
func (w *Watcher) setDown(err error) {
	if err == nil {
		err = errors.New("session ended")
	}
	w.mu.Lock()
	was := w.up
	w.up, w.lastErr = false, err
	first := w.logged == ""
	w.logged = err.Error()
	w.mu.Unlock()
	if !was && !first {
		w.log.Debug("libvirt still unavailable", "err", err) // one warning per outage
		return
	}
	w.log.Warn("libvirt unavailable, VMs are left out until it answers; retrying — start libvirtd or check --collector.libvirt.socket",
		"socket", w.opts.Socket, "err", err)
}

// stateName is the virDomainState name.
func stateName(s int32) string {
	switch libvirt.DomainState(s) {
	case libvirt.DomainRunning:
		return "running"
	case libvirt.DomainBlocked:
		return "blocked"
	case libvirt.DomainPaused:
		return "paused"
	case libvirt.DomainShutdown:
		return "shutdown"
	case libvirt.DomainShutoff:
		return "shutoff"
	case libvirt.DomainCrashed:
		return "crashed"
	case libvirt.DomainPmsuspended:
		return "pmsuspended"
	}
	return "nostate"
}

// formatUUID is the canonical lower-case form of a libvirt UUID.
func formatUUID(u libvirt.UUID) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b.WriteByte('-')
		}
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}
