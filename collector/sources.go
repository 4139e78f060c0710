package collector

import (
	"context"
	"sync"
	"time"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/hostnet"
)

// Sources are the readings collectors share. One scrape runs several
// collectors at once; they all want the same host snapshot, so it is taken
// once and reused while it is younger than MaxAge.
type Sources struct {
	// Host scans namespaces and links.
	Host *HostCache
	// Docker is the cached Docker view, nil when the docker collector is off.
	Docker *dockerview.Watcher
	// Flows is the packet capture, nil unless the flows collector is on.
	Flows *Flows
}

// HostCache shares one hostnet scan between the collectors of a scrape.
type HostCache struct {
	scanner *hostnet.Scanner
	maxAge  time.Duration

	mu    sync.Mutex
	taken time.Time
	snap  *hostnet.Snapshot
}

// NewHostCache returns a cache over scanner. Concurrent callers within
// maxAge of a scan share its result.
func NewHostCache(scanner *hostnet.Scanner, maxAge time.Duration) *HostCache {
	return &HostCache{scanner: scanner, maxAge: maxAge}
}

// Snapshot returns a recent scan, scanning when the last one is too old.
// Callers must not modify the result.
func (h *HostCache) Snapshot(ctx context.Context) (*hostnet.Snapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.snap != nil && time.Since(h.taken) < h.maxAge {
		return h.snap, nil
	}
	snap, err := h.scanner.Scan(ctx)
	if err != nil {
		return nil, err
	}
	h.snap, h.taken = snap, time.Now()
	return snap, nil
}
