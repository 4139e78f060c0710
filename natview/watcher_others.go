//go:build !linux

package natview

import (
	"context"
	"fmt"
)

// Watcher is the conntrack view; conntrack (ctnetlink) exists on Linux
// only, so elsewhere it is always unavailable.
type Watcher struct{}

// New returns a Watcher that reports conntrack unavailable.
func New(Options) (*Watcher, error) { return &Watcher{}, nil }

// Run returns at once: there is nothing to watch.
func (*Watcher) Run(context.Context) {}

// Snapshot reports that conntrack needs Linux.
func (*Watcher) Snapshot() (Snapshot, error) {
	return Snapshot{}, fmt.Errorf("%w: conntrack (ctnetlink) exists on Linux only", ErrUnavailable)
}
