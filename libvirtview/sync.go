package libvirtview

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sync/errgroup"
)

// errClosed is a session ended by libvirtd closing the connection.
var errClosed = errors.New("connection to libvirtd closed")

// session is one connection's life: it returns why it ended.
func (w *Watcher) session(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends go-libvirt's event goroutines
	c, err := w.opts.dial(ctx)
	if err != nil {
		return err
	}
	defer func() { closeClient(c, err) }()
	// Subscribe before listing so that nothing happening during the list is
	// missed; events queue up in go-libvirt until the list is done.
	lifecycle, err := call(ctx, w, func() (<-chan libvirt.DomainEventLifecycleMsg, error) { return c.LifecycleEvents(ctx) })
	if err != nil {
		return fmt.Errorf("subscribe to lifecycle events: %w", err)
	}
	defer drain(lifecycle)
	var devices [2]<-chan any
	for i, id := range []libvirt.DomainEventID{libvirt.DomainEventIDDeviceAdded, libvirt.DomainEventIDDeviceRemoved} {
		ch, err := call(ctx, w, func() (<-chan any, error) { return c.SubscribeEvents(ctx, id, nil) })
		if err != nil {
			return fmt.Errorf("subscribe to device events: %w", err)
		}
		defer drain(ch)
		devices[i] = ch
	}
	if err := w.sync(ctx, c); err != nil {
		return err
	}
	resync := time.NewTicker(w.opts.Resync)
	defer resync.Stop()
	for {
		var dom *libvirt.Domain
		networks := false
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.Disconnected():
			return errClosed
		case ev, ok := <-lifecycle:
			if !ok {
				return fmt.Errorf("lifecycle events: %w", errClosed)
			}
			// A domain that started or stopped changes leases: re-read the
			// (few) networks too.
			dom, networks = &ev.Dom, true
		case ev, ok := <-devices[0]:
			if !ok {
				return fmt.Errorf("device events: %w", errClosed)
			}
			dom = eventDomain(ev)
		case ev, ok := <-devices[1]:
			if !ok {
				return fmt.Errorf("device events: %w", errClosed)
			}
			dom = eventDomain(ev)
		case <-resync.C:
			if err := w.sync(ctx, c); err != nil {
				return fmt.Errorf("resync: %w", err)
			}
		}
		if dom != nil {
			if err := w.refreshDomain(ctx, c, *dom); err != nil {
				return err
			}
		}
		if networks {
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

// sync re-lists every domain and network and replaces the cache.
func (w *Watcher) sync(ctx context.Context, c client) error {
	doms, err := call(ctx, w, func() ([]libvirt.Domain, error) {
		d, _, err := c.ConnectListAllDomains(1, 0)
		return d, err
	})
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	w.parsed.rotate()
	domains, err := w.readDomains(ctx, c, doms)
	if err != nil {
		return err
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

// syncWorkers bounds the domains read at once in a full sync. go-libvirt
// multiplexes calls over its one connection, so reading several domains at
// once hides libvirtd's round trips, and their XML is parsed on every CPU.
var syncWorkers = max(4, runtime.GOMAXPROCS(0))

// readDomains reads doms with up to syncWorkers calls in flight. The first
// connection error stops the rest and is returned.
func (w *Watcher) readDomains(ctx context.Context, c client, doms []libvirt.Domain) (map[string]Domain, error) {
	type result struct {
		dom Domain
		ok  bool
	}
	results := make([]result, len(doms))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(min(syncWorkers, max(1, len(doms))))
	for i, d := range doms {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			dom, ok, err := w.readDomain(gctx, c, d)
			results[i] = result{dom, ok}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	domains := make(map[string]Domain, len(doms))
	for _, r := range results {
		if r.ok {
			domains[r.dom.UUID] = r.dom
		}
	}
	return domains, nil
}

// refreshDomain re-reads one domain after an event; a domain gone meanwhile
// (a transient domain destroyed, a domain undefined) leaves the cache.
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
// error nil) when the domain vanished between list and read. A domain whose
// XML libvirtd refuses or that does not parse is kept as Partial (name,
// UUID, ID, state). Both are logged at debug and counted, never a failed
// view. Errors are the connection's.
func (w *Watcher) readDomain(ctx context.Context, c client, d libvirt.Domain) (Domain, bool, error) {
	partial := Domain{Name: d.Name, UUID: formatUUID(d.UUID), Partial: true}
	if d.ID > 0 {
		partial.ID = int(d.ID)
	}
	state, err := call(ctx, w, func() (int32, error) {
		st, _, err := c.DomainGetState(d, 0)
		return st, err
	})
	if err == nil {
		partial.State = stateName(state)
		var x string
		x, err = call(ctx, w, func() (string, error) { return c.DomainGetXMLDesc(d, 0) })
		if err == nil {
			return w.parseDomainXML(d, x, partial)
		}
	}
	switch {
	case libvirt.IsNotFound(err):
		w.log.Debug("domain vanished between list and read", "domain", d.Name)
		w.stats.vanished.Add(1)
		return Domain{}, false, nil
	case isLibvirtError(err):
		w.log.Debug("domain not readable, kept without NICs", "domain", d.Name, "err", err)
		w.stats.readErrors.Add(1)
		return partial, true, nil
	}
	return Domain{}, false, fmt.Errorf("read domain %s: %w", d.Name, err)
}

// parseDomainXML parses a domain's XML, counting what it cannot use. XML
// identical to the last read of the same domain is not parsed again (most
// domains do not change between resyncs); its counts are added again, so
// Stats keep counting every read.
func (w *Watcher) parseDomainXML(d libvirt.Domain, x string, partial Domain) (Domain, bool, error) {
	key := partial.UUID + "/" + d.Name
	p, ok := w.parsed.get(key, x)
	if !ok {
		dom, dups, err := parseDomain(x, partial.State)
		if err != nil {
			w.log.Debug("domain XML unreadable, kept without NICs", "domain", d.Name, "err", err)
			w.stats.parseErrors.Add(1)
			return partial, true, nil
		}
		p = parsedDomain{xml: x, dom: dom, dups: dups}
		for _, n := range dom.NICs {
			if n.Target == "" && wantsTarget(n.Type) {
				p.noTarget = append(p.noTarget, n.Key()+" ("+n.Type+")")
			}
		}
		if dups > 0 {
			w.log.Debug("domain NICs with a repeated or empty key left out", "domain", d.Name, "count", dups)
		}
	}
	w.parsed.put(key, p)
	dom := p.dom
	dom.State = partial.State
	w.stats.duplicateNICs.Add(uint64(p.dups))
	if dom.State != "shutoff" && len(p.noTarget) > 0 {
		if !ok {
			w.log.Debug("NICs of a running domain without target, keyed by alias or MAC", "domain", d.Name, "nics", p.noTarget)
		}
		w.stats.nicsWithoutTarget.Add(uint64(len(p.noTarget)))
	}
	return dom, true, nil
}

// wantsTarget reports whether a NIC of type typ on a running domain
// normally has a host device in <target dev>.
func wantsTarget(typ string) bool {
	switch typ {
	case "bridge", "network", "ethernet", "direct":
		return true
	}
	return false
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

// readNetworks lists and reads every network. A network that vanished is
// left out, one whose XML cannot be read is kept with name and UUID only;
// leases that cannot be read leave Leases empty.
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
		net, ok, err := w.readNetwork(ctx, c, n)
		if err != nil {
			return nil, err
		}
		if ok {
			out[net.Name] = net
		}
	}
	return out, nil
}

func (w *Watcher) readNetwork(ctx context.Context, c client, n libvirt.Network) (Network, bool, error) {
	bad := func(err error) (Network, bool, error) {
		if code, ok := libvirtErrorCode(err); ok && code == libvirt.ErrNoNetwork {
			w.log.Debug("network vanished between list and read", "network", n.Name)
			w.stats.vanished.Add(1)
			return Network{}, false, nil
		}
		if isLibvirtError(err) {
			w.log.Debug("network not readable, kept by name", "network", n.Name, "err", err)
			w.stats.readErrors.Add(1)
			return Network{Name: n.Name, UUID: formatUUID(n.UUID)}, true, nil
		}
		return Network{}, false, fmt.Errorf("read network %s: %w", n.Name, err)
	}
	x, err := call(ctx, w, func() (string, error) { return c.NetworkGetXMLDesc(n, 0) })
	if err != nil {
		return bad(err)
	}
	active, err := call(ctx, w, func() (int32, error) { return c.NetworkIsActive(n) })
	if err != nil {
		return bad(err)
	}
	net, err := parseNetwork(x, active != 0)
	if err != nil {
		w.log.Debug("network XML unreadable, kept by name", "network", n.Name, "err", err)
		w.stats.parseErrors.Add(1)
		net = Network{Name: n.Name, UUID: formatUUID(n.UUID), Active: active != 0}
	}
	if !net.Active {
		return net, true, nil
	}
	leases, err := call(ctx, w, func() ([]libvirt.NetworkDhcpLease, error) {
		l, _, err := c.NetworkGetDhcpLeases(n, nil, 1, 0)
		return l, err
	})
	switch {
	case err == nil:
	case isLibvirtError(err):
		w.log.Debug("network leases not readable", "network", n.Name, "err", err)
		w.stats.readErrors.Add(1)
	default:
		return Network{}, false, fmt.Errorf("read leases of network %s: %w", n.Name, err)
	}
	for _, l := range leases {
		lease := Lease{IP: l.Ipaddr, Prefix: int(l.Prefix), Expiry: time.Unix(l.Expirytime, 0)}
		if len(l.Mac) > 0 {
			lease.MAC = strings.ToLower(l.Mac[0])
		}
		if len(l.Hostname) > 0 {
			lease.Hostname = l.Hostname[0]
		}
		net.Leases = append(net.Leases, lease)
	}
	return net, true, nil
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

func libvirtErrorCode(err error) (libvirt.ErrorNumber, bool) {
	var e libvirt.Error
	if errors.As(err, &e) {
		return libvirt.ErrorNumber(e.Code), true
	}
	return 0, false
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
