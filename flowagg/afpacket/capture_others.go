//go:build !linux

package afpacket

import (
	"context"
	"log/slog"

	"github.com/tangfeixiong/nta/flowagg"
)

// Capturer captures frames with AF_PACKET; on this platform it only reports
// ErrNotSupported.
type Capturer struct{}

// NewCapturer returns ErrNotSupported: AF_PACKET exists only on Linux.
func NewCapturer(cfg CaptureConfig, agg *flowagg.Aggregator, roles RoleSource, logger *slog.Logger) (*Capturer, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return nil, ErrNotSupported
}

// Run returns ErrNotSupported.
func (c *Capturer) Run(ctx context.Context) error { return ErrNotSupported }

// Stats returns nothing.
func (c *Capturer) Stats() []IfaceStats { return nil }

// Err returns ErrNotSupported.
func (c *Capturer) Err() error { return ErrNotSupported }

// LinkResubscribes returns 0.
func (c *Capturer) LinkResubscribes() uint64 { return 0 }
