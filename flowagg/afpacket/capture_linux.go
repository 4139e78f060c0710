//go:build linux

package afpacket

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tangfeixiong/nta/flowagg"
)

// statsEvery bounds how long kernel counters (uint32, reset on read) go unread.
const statsEvery = 10 * time.Second

// linkEventDelay batches the burst of netlink notifications a container start makes.
const linkEventDelay = 200 * time.Millisecond

// Capturer captures on the selected interfaces of the host network namespace
// with one TPACKET_V3 ring per interface (or per fanout member) and feeds the
// frames to an flowagg.Aggregator. Interfaces that appear are picked up and ones that
// vanish are released while Run runs.
type Capturer struct {
	cfg    CaptureConfig
	filter []bpf.RawInstruction
	agg    *flowagg.Aggregator
	roles  RoleSource
	log    *slog.Logger

	running atomic.Bool
	exited  chan memberExit
	quit    chan struct{} // closed when Run returns

	mu        sync.Mutex // guards ifaces; written only by the Run goroutine
	ifaces    map[string]*ifaceCapture
	failed    map[string]ifaceFailure // selected interfaces that cannot be captured (Run goroutine only)
	ringBytes int                     // kernel ring memory of the captured interfaces (Run goroutine only)

	// open opens one ring (openRing; tests inject failures).
	open func(ringOptions) (*ring, error)
	// subscribe starts the netlink link feed (netlink.LinkSubscribeWithOptions).
	subscribe func(ch chan<- netlink.LinkUpdate, done <-chan struct{}, opts netlink.LinkSubscribeOptions) error

	feedBuffer       int           // receive buffer of the link feed socket (tests make it tiny)
	linkResubscribes atomic.Uint64 // link feed ends (ENOBUFS) followed by a resubscribe
	lastFeedLoss     time.Time     // Run goroutine only
	feedErr          atomic.Pointer[error]

	lastRoles   map[string][]string // Run goroutine only
	rolesFailed bool

	runErr  atomic.Pointer[error] // why Run stopped capturing, set once
	failErr atomic.Pointer[error] // which selected interfaces cannot be captured; nil pointer or nil error: none
}

// ifaceFailure is why a selected interface cannot be captured.
type ifaceFailure struct {
	index int
	err   error
}

// feedLossEpisode: link feed losses closer together than this are one
// episode, logged once at warn.
const feedLossEpisode = time.Minute

// ifaceCapture is the capture of one interface: one ring per fanout member.
type ifaceCapture struct {
	name       string
	index      int
	members    []*member
	stopped    chan struct{} // closed when stopping starts
	done       chan struct{} // closed when every member goroutine has returned
	downLogged atomic.Bool
}

type member struct {
	shard int
	ring  *ring
	table *flowagg.IfaceTable
}

type memberExit struct {
	ic  *ifaceCapture
	err error
}

// NewCapturer checks cfg and returns a Capturer feeding agg. roles may be nil:
// then only cfg.Selector.Names select. logger may be nil.
func NewCapturer(cfg CaptureConfig, agg *flowagg.Aggregator, roles RoleSource, logger *slog.Logger) (*Capturer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if agg == nil {
		return nil, errors.New("NewCapturer: nil flowagg.Aggregator")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	filter := socketFilter(cfg.Filter, cfg.Snaplen)
	if len(cfg.Filter) > 0 {
		if err := checkBPF(cfg.Filter); err != nil {
			return nil, err
		}
	}
	return &Capturer{
		cfg: cfg, filter: filter, agg: agg, roles: roles, log: logger,
		exited:     make(chan memberExit),
		quit:       make(chan struct{}),
		ifaces:     make(map[string]*ifaceCapture),
		failed:     make(map[string]ifaceFailure),
		open:       openRing,
		subscribe:  netlink.LinkSubscribeWithOptions,
		feedBuffer: 1 << 20,
	}, nil
}

// Run captures until ctx is done, then releases every interface and returns nil.
// It rescans the interfaces on netlink link notifications and every
// cfg.Rescan. It returns early with an error only when capture cannot work at
// all (no permission to open AF_PACKET sockets).
func (c *Capturer) Run(ctx context.Context) (err error) {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("Capturer.Run called twice")
	}
	defer func() {
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err == nil {
			err = errors.New("capture stopped")
		}
		stopped := err
		c.runErr.Store(&stopped)
		if errors.Is(err, ctx.Err()) {
			err = nil
		}
	}()
	defer close(c.quit)
	defer c.stopAll("capture stopped")

	if err := probeSocket(c.filter); err != nil {
		return err
	}
	var unsubscribe func()
	defer func() {
		if unsubscribe != nil {
			unsubscribe()
		}
	}()
	updates, unsubscribe := c.subscribeLinks(ctx)
	if updates == nil {
		c.log.Warn("no netlink link notifications, relying on periodic rescan", "err", c.lastFeedErr(), "rescan", c.cfg.Rescan)
	}

	if err := c.scan(ctx); err != nil {
		return err
	}
	rescan := time.NewTicker(c.cfg.Rescan)
	defer rescan.Stop()
	statsTick := time.NewTicker(statsEvery)
	defer statsTick.Stop()
	var soon <-chan time.Time
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-updates:
			if !ok {
				// The library ends the feed on any receive error, ENOBUFS
				// when the kernel dropped notifications: interfaces that
				// came or went meanwhile are unknown. Subscribe again and
				// resync with a full scan now.
				unsubscribe()
				updates, unsubscribe = c.resubscribe(ctx)
				err = c.scan(ctx)
			} else if soon == nil {
				soon = time.After(linkEventDelay)
			}
		case <-soon:
			soon = nil
			err = c.scan(ctx)
		case <-rescan.C:
			if updates == nil { // the last resubscribe failed: try again
				unsubscribe()
				updates, unsubscribe = c.resubscribe(ctx)
			}
			err = c.scan(ctx)
		case ex := <-c.exited:
			c.memberExited(ex)
		case <-statsTick.C:
			c.Stats()
		}
		if err != nil {
			return err
		}
	}
}

// probeSocket checks that AF_PACKET sockets can be opened at all and that
// the kernel takes the socket filter, so that an unprivileged exporter or a
// bad filter fails the flows collector at once, not only once an interface
// is selected. The socket is never bound: it receives nothing.
func probeSocket(filter []bpf.RawInstruction) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return openSocketError(err)
	}
	defer unix.Close(fd)
	if err := attachFilter(fd, filter); err != nil {
		return fmt.Errorf("capture filter: %w", err)
	}
	return nil
}

// subscribeLinks starts the netlink link feed. It returns a nil channel
// (and a no-op stop) when the subscription failed; the error is kept for
// the log (lastFeedErr).
func (c *Capturer) subscribeLinks(ctx context.Context) (<-chan netlink.LinkUpdate, func()) {
	updates := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	err := c.subscribe(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil {
				c.feedErr.Store(&err)
				c.log.Debug("netlink link subscription", "err", err)
			}
		},
		// Room for the burst of a namespace churn; capped by net.core.rmem_max.
		ReceiveBufferSize: c.feedBuffer,
	})
	if err != nil {
		c.feedErr.Store(&err)
		return nil, func() {}
	}
	return updates, func() {
		close(done)
		go func() { // the library closes the channel once its socket is closed
			for range updates {
			}
		}()
	}
}

// resubscribe replaces a link feed that ended: it counts the loss, logs it
// at warn once per episode (losses less than feedLossEpisode apart), and
// subscribes again.
func (c *Capturer) resubscribe(ctx context.Context) (<-chan netlink.LinkUpdate, func()) {
	n := c.linkResubscribes.Add(1)
	now := time.Now()
	level := slog.LevelDebug
	if c.lastFeedLoss.IsZero() || now.Sub(c.lastFeedLoss) > feedLossEpisode {
		level = slog.LevelWarn
	}
	c.lastFeedLoss = now
	updates, stop := c.subscribeLinks(ctx)
	c.log.Log(ctx, level, "netlink link notifications lost (ENOBUFS: the kernel dropped notifications nta had not read yet); resubscribed and rescanning every interface — raise net.core.rmem_max if this repeats",
		"err", c.lastFeedErr(), "resubscribed", updates != nil, "resubscribes", n)
	return updates, stop
}

func (c *Capturer) lastFeedErr() error {
	if p := c.feedErr.Load(); p != nil {
		return *p
	}
	return nil
}

// LinkResubscribes returns how often the netlink link feed ended (ENOBUFS
// under namespace churn) and was subscribed again with a full rescan.
func (c *Capturer) LinkResubscribes() uint64 { return c.linkResubscribes.Load() }

// scan lists the host's links, starts capture on newly selected ones and
// stops it on vanished, replaced or deselected ones. Interfaces must be up to
// be picked up; captured ones that go down are kept (the kernel re-hooks the
// socket when they come back up).
func (c *Capturer) scan(ctx context.Context) error {
	links, err := listLinks()
	if err != nil {
		c.log.Warn("list network interfaces", "err", err)
		return nil
	}
	roles, rolesKnown := c.interfaceRoles(ctx)
	byName := make(map[string]LinkInfo, len(links))
	for _, l := range links {
		byName[l.Name] = l
	}
	for name, ic := range c.ifaces {
		l, ok := byName[name]
		switch {
		case !ok:
			c.stopIface(ic, "interface vanished")
		case l.Index != ic.index:
			c.stopIface(ic, "interface replaced")
		case rolesKnown && !c.cfg.Selector.Match(name, roles[name]):
			c.stopIface(ic, "interface no longer selected")
		}
	}
	for _, l := range links {
		if _, ok := c.ifaces[l.Name]; ok || !l.Up || !c.cfg.Selector.Match(l.Name, roles[l.Name]) {
			continue
		}
		err := c.start(l)
		switch {
		case err == nil:
			delete(c.failed, l.Name)
		case errors.Is(err, fs.ErrPermission), errors.Is(err, ErrFilterRejected):
			// The same on every interface: retrying cannot help.
			return err
		case errors.Is(err, errIfaceGone):
			c.log.Debug("interface vanished before capture started", "interface", l.Name)
		default:
			if f, ok := c.failed[l.Name]; !ok || f.index != l.Index {
				c.log.Warn("cannot capture, will retry on the next rescan", "interface", l.Name, "err", err)
			}
			c.failed[l.Name] = ifaceFailure{index: l.Index, err: err}
		}
	}
	for name, f := range c.failed {
		l, ok := byName[name]
		_, captured := c.ifaces[name]
		if !ok || l.Index != f.index || captured || (rolesKnown && !c.cfg.Selector.Match(name, roles[name])) {
			delete(c.failed, name)
		}
	}
	c.publishFailures()
	return nil
}

// publishFailures makes the interfaces that cannot be captured visible to
// Err (scrapes read it from other goroutines).
func (c *Capturer) publishFailures() {
	if len(c.failed) == 0 {
		c.failErr.Store(nil)
		return
	}
	names := slices.Sorted(maps.Keys(c.failed))
	first := c.failed[names[0]]
	err := fmt.Errorf("%w on %d selected interface(s) %s, retried every rescan (%s): %s: %w",
		ErrInterfacesFailed, len(names), strings.Join(names, ", "), c.cfg.Rescan, names[0], first.err)
	c.failErr.Store(&err)
}

// interfaceRoles asks the role source. ok is false when it failed: then the
// last roles it gave are used, and nothing is stopped for lack of a role.
func (c *Capturer) interfaceRoles(ctx context.Context) (roles map[string][]string, ok bool) {
	if c.roles == nil {
		return nil, true
	}
	ctx, cancel := context.WithTimeout(ctx, rolesTimeout)
	defer cancel()
	roles, err := c.roles.InterfaceRoles(ctx)
	if err != nil {
		if !c.rolesFailed {
			c.log.Warn("interface roles unavailable, keeping the last ones", "err", err)
		}
		c.rolesFailed = true
		return c.lastRoles, false
	}
	if c.rolesFailed {
		c.log.Info("interface roles available again")
	}
	c.rolesFailed, c.lastRoles = false, roles
	return roles, true
}

// start opens cfg.Fanout rings on l and starts one goroutine per ring.
func (c *Capturer) start(l LinkInfo) error {
	need := c.cfg.ringBytesPerInterface()
	if c.ringBytes+need > c.cfg.MaxTotalRingBytes {
		return fmt.Errorf("%w: capturing %s needs %d more bytes of ring memory, %d of %d (--collector.flows.ring.max-total-bytes) are in use by %d interfaces — raise the limit, lower the ring size, or select fewer interfaces",
			ErrRingBudget, l.Name, need, c.ringBytes, c.cfg.MaxTotalRingBytes, len(c.ifaces))
	}
	ic := &ifaceCapture{name: l.Name, index: l.Index, stopped: make(chan struct{}), done: make(chan struct{})}
	fanoutID := -1
	for shard := range c.cfg.Fanout {
		r, err := c.open(ringOptions{
			name: l.Name, ifindex: l.Index,
			blockSize: c.cfg.BlockSize, numBlocks: c.cfg.NumBlocks, blockTimeout: c.cfg.BlockTimeout,
			filter: c.filter, fanout: c.cfg.Fanout > 1, fanoutID: fanoutID,
		})
		if err != nil {
			for _, m := range ic.members {
				m.ring.close(-1)
			}
			return err
		}
		fanoutID = r.fanoutID
		ic.members = append(ic.members, &member{shard: shard, ring: r})
	}
	for _, m := range ic.members {
		m.table = c.table(ic.name, m.shard)
		m.table.SetWaker(m.ring.wake) // a scrape need not wait for the ring's poll timeout
	}
	var wg sync.WaitGroup
	for _, m := range ic.members {
		wg.Go(func() { c.runMember(ic, m) })
	}
	go func() {
		wg.Wait()
		close(ic.done)
	}()
	c.mu.Lock()
	c.ifaces[ic.name] = ic
	c.mu.Unlock()
	c.ringBytes += need
	c.log.Info("capturing", "interface", ic.name, "ifindex", ic.index, "sockets", len(ic.members),
		"ring_bytes", c.cfg.BlockSize*c.cfg.NumBlocks)
	return nil
}

// runMember runs one ring and reports an unexpected end to Run.
func (c *Capturer) runMember(ic *ifaceCapture, m *member) {
	exists := func() bool {
		l, err := net.InterfaceByIndex(ic.index)
		return err == nil && l.Name == ic.name
	}
	downed := func(err error) {
		if ic.downLogged.CompareAndSwap(false, true) {
			c.log.Info("interface is down, capture resumes when it comes up", "interface", ic.name, "err", err)
		}
	}
	err := m.ring.run(m.table, exists, downed)
	if err == nil {
		return
	}
	select {
	case c.exited <- memberExit{ic, err}:
	case <-ic.stopped:
	case <-c.quit:
	}
}

// memberExited stops the whole interface when one of its rings ended on its own.
func (c *Capturer) memberExited(ex memberExit) {
	if c.ifaces[ex.ic.name] != ex.ic {
		return // already stopped
	}
	if errors.Is(ex.err, errIfaceGone) {
		c.stopIface(ex.ic, "interface vanished")
		return
	}
	c.log.Warn("capture failed, retrying on the next rescan", "interface", ex.ic.name, "err", ex.err)
	c.stopIface(ex.ic, "capture failed")
	c.failed[ex.ic.name] = ifaceFailure{index: ex.ic.index, err: ex.err}
	c.publishFailures()
}

// stopIface stops the rings of ic, waits for their goroutines, closes the
// sockets and releases the flow tables.
func (c *Capturer) stopIface(ic *ifaceCapture, reason string) {
	close(ic.stopped)
	for _, m := range ic.members {
		m.ring.stop()
	}
	<-ic.done
	var total IfaceStats
	for _, m := range ic.members {
		m.table.SetWaker(nil)
		m.ring.close(-1)
		s := m.ring.stats()
		total.Packets += s.Packets
		total.Drops += s.Drops
	}
	c.mu.Lock()
	delete(c.ifaces, ic.name)
	c.mu.Unlock()
	c.ringBytes -= c.cfg.ringBytesPerInterface()
	c.release(ic.name)
	c.log.Info("released interface", "interface", ic.name, "reason", reason,
		"kernel_packets", total.Packets, "kernel_drops", total.Drops)
}

func (c *Capturer) stopAll(reason string) {
	for _, ic := range c.ifaces {
		c.stopIface(ic, reason)
	}
}

// Err returns nil while Run captures every selected interface. Once Run
// has returned it is the reason capture stopped (the context's error after
// a clean stop; no AF_PACKET permission; a filter the kernel rejects); while
// Run runs, an error wrapping ErrInterfacesFailed names the selected
// interfaces whose capture cannot start or failed (a ring the kernel
// refused, the ring memory budget). The exporter reports either as a
// failed flows collector.
func (c *Capturer) Err() error {
	if p := c.runErr.Load(); p != nil {
		return *p
	}
	if p := c.failErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Stats returns the running kernel totals of every captured interface, sorted by name.
func (c *Capturer) Stats() []IfaceStats {
	c.mu.Lock()
	list := make([]*ifaceCapture, 0, len(c.ifaces))
	for _, ic := range c.ifaces {
		list = append(list, ic)
	}
	c.mu.Unlock()
	out := make([]IfaceStats, 0, len(list))
	for _, ic := range list {
		s := IfaceStats{Name: ic.name, Index: ic.index, Sockets: len(ic.members)}
		for _, m := range ic.members {
			t := m.ring.stats()
			s.Packets += t.Packets
			s.Drops += t.Drops
			s.FreezeQueue += t.FreezeQueue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b IfaceStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// table returns the flow table of one fanout member of an interface.
func (c *Capturer) table(name string, shard int) *flowagg.IfaceTable { return c.agg.Shard(name, shard) }

// release drops the tables of all shards of an interface.
func (c *Capturer) release(name string) { c.agg.Release(name) }

// listLinks reads the links of the calling thread's (the host) network namespace.
// A dump that interfaces changed under (NLM_F_DUMP_INTR: likely right
// when a burst of changes overflowed the link feed) is read again.
func listLinks() ([]LinkInfo, error) {
	links, err := netlink.LinkList()
	for try := 0; errors.Is(err, netlink.ErrDumpInterrupted) && try < 5; try++ {
		time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
		links, err = netlink.LinkList()
	}
	if err != nil {
		return nil, fmt.Errorf("netlink link list: %w", err)
	}
	out := make([]LinkInfo, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		out = append(out, LinkInfo{Name: a.Name, Index: a.Index, Up: a.Flags&net.FlagUp != 0})
	}
	return out, nil
}
