package flowagg

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config sets the limits of an Aggregator. Zero fields take the defaults
// below (see withDefaults).
type Config struct {
	// MaxFlowsPerInterface caps the flows (series) one interface keeps.
	// Default 10000.
	MaxFlowsPerInterface int
	// MaxFlowsTotal caps the flows of all interfaces together: each
	// interface's share is MaxFlowsTotal / number of interfaces (at least 1),
	// and the smaller of the share and MaxFlowsPerInterface applies.
	// Default 50000.
	MaxFlowsTotal int
	// IdleTimeout removes a flow (and its series) when it saw no packet for
	// this long. Default 5m; negative disables expiry (offline analysis).
	IdleTimeout time.Duration
	// Granularity is how much of the 5-tuple a flow keeps.
	Granularity Granularity
	// ArpConflictWindow: one IP claimed by two MACs within this window is a
	// conflict. Default 10s.
	ArpConflictWindow time.Duration
	// MaxARPBindings caps the (IP, MAC) bindings kept per interface.
	// Default 4096.
	MaxARPBindings int
	// SnapshotWait is how long a scrape waits for a table's capture loop to
	// publish a fresh snapshot before it uses the previous one. Default 250ms.
	SnapshotWait time.Duration
}

// Defaults applied by NewAggregator to zero Config fields.
const (
	DefaultMaxFlowsPerInterface = 10000
	DefaultMaxFlowsTotal        = 50000
	DefaultIdleTimeout          = 5 * time.Minute
	DefaultArpConflictWindow    = 10 * time.Second
	DefaultMaxARPBindings       = 4096
	DefaultSnapshotWait         = 250 * time.Millisecond
)

func (c Config) withDefaults() Config {
	if c.MaxFlowsPerInterface <= 0 {
		c.MaxFlowsPerInterface = DefaultMaxFlowsPerInterface
	}
	if c.MaxFlowsTotal <= 0 {
		c.MaxFlowsTotal = DefaultMaxFlowsTotal
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ArpConflictWindow <= 0 {
		c.ArpConflictWindow = DefaultArpConflictWindow
	}
	if c.MaxARPBindings <= 0 {
		c.MaxARPBindings = DefaultMaxARPBindings
	}
	if c.SnapshotWait <= 0 {
		c.SnapshotWait = DefaultSnapshotWait
	}
	return c
}

// Aggregator owns the per-interface flow tables and shares the total flow
// budget among them. An interface captured by several fanout sockets has one
// table per socket (shard), each owned by its socket's goroutine; the shards
// split the interface's budget and are merged at export. Its methods are
// safe for concurrent use; the tables it returns are not (each belongs to one
// capture goroutine).
type Aggregator struct {
	cfg    Config
	budget sharedBudget // read by every table when it inserts a flow
	mu     sync.Mutex
	ifaces map[string][]*IfaceTable // by interface name, indexed by shard
}

// NewAggregator returns an Aggregator with cfg (zero fields take defaults).
func NewAggregator(cfg Config) *Aggregator {
	return &Aggregator{cfg: cfg.withDefaults(), ifaces: make(map[string][]*IfaceTable)}
}

// Config returns the configuration in force, defaults filled in.
func (a *Aggregator) Config() Config { return a.cfg }

// Interface returns the table of the named interface (shard 0), creating it
// when the capture picks the interface up.
func (a *Aggregator) Interface(name string) *IfaceTable { return a.Shard(name, 0) }

// Shard returns the table of one fanout socket (shard >= 0) of the named
// interface, creating it. Creating a table shrinks the shares of the budget;
// tables above their new share fold their smallest flows at their next
// Publish.
func (a *Aggregator) Shard(name string, shard int) *IfaceTable {
	shard = max(shard, 0)
	a.mu.Lock()
	defer a.mu.Unlock()
	shards := a.ifaces[name]
	if shard < len(shards) && shards[shard] != nil {
		return shards[shard]
	}
	for len(shards) <= shard {
		shards = append(shards, nil)
	}
	t := newIfaceTable(name, shard, a.cfg, &a.budget)
	shards[shard] = t
	a.ifaces[name] = shards
	a.rebalanceLocked(name)
	return t
}

// Release drops the tables (all shards) of an interface that vanished: its
// series leave /metrics at the next scrape and its share of the budget goes
// to the others. The capture goroutines must not use the tables afterwards.
// Releasing an unknown name does nothing.
func (a *Aggregator) Release(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.ifaces[name]; !ok {
		return
	}
	delete(a.ifaces, name)
	a.rebalanceLocked(name)
}

// rebalanceLocked updates the budget after the tables of interface name
// changed: the number of interfaces the total is shared among, and the
// shard count of name's tables. Each table derives its limit from these
// (IfaceTable.limits), so this costs O(shards of name), not a pass over
// every table: a pcapng file of 100k interfaces stays linear.
func (a *Aggregator) rebalanceLocked(name string) {
	a.budget.ifaces.Store(int64(len(a.ifaces)))
	n := 0
	for _, t := range a.ifaces[name] {
		if t != nil {
			n++
		}
	}
	for _, t := range a.ifaces[name] {
		if t != nil {
			t.shards.Store(int64(n))
		}
	}
}

// Tables returns the current tables sorted by interface name and shard.
func (a *Aggregator) Tables() []*IfaceTable {
	a.mu.Lock()
	var ts []*IfaceTable
	for _, shards := range a.ifaces {
		for _, t := range shards {
			if t != nil {
				ts = append(ts, t)
			}
		}
	}
	a.mu.Unlock()
	slices.SortFunc(ts, func(x, y *IfaceTable) int {
		if c := strings.Compare(x.name, y.name); c != 0 {
			return c
		}
		return x.shard - y.shard
	})
	return ts
}

// Snapshots asks every table for a fresh snapshot and waits until each
// capture loop published one, ctx is done, or Config.SnapshotWait passed; a
// table that did not answer in time contributes its previous snapshot (or
// none if it never published). Shards of one interface are merged into one
// snapshot. It never blocks a capture goroutine.
func (a *Aggregator) Snapshots(ctx context.Context) []*TableSnapshot {
	tables := a.Tables()
	waits := make([]<-chan struct{}, len(tables))
	for i, t := range tables {
		waits[i] = t.requestSnapshot()
	}
	timer := time.NewTimer(a.cfg.SnapshotWait)
	defer timer.Stop()
	expired := false
	var snaps, group []*TableSnapshot
	for i, t := range tables {
		if !expired {
			select {
			case <-waits[i]:
			case <-timer.C:
				expired = true
			case <-ctx.Done():
				expired = true
			}
		}
		s := t.Published()
		if s == nil {
			continue
		}
		if len(group) > 0 && group[0].Interface != s.Interface {
			snaps = append(snaps, mergeSnapshots(group))
			group = group[:0]
		}
		group = append(group, s)
	}
	if len(group) > 0 {
		snaps = append(snaps, mergeSnapshots(group))
	}
	return snaps
}
