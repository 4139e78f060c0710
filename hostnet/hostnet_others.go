//go:build !linux

package hostnet

import (
	"context"
	"fmt"
)

// Scan is not supported outside Linux; it returns ErrNotSupported.
func (s *Scanner) Scan(ctx context.Context) (*Snapshot, error) {
	return nil, ErrNotSupported
}

// InodeOf is not supported outside Linux; it returns ErrNotSupported.
func InodeOf(path string) (uint64, error) {
	return 0, fmt.Errorf("%s: %w", path, ErrNotSupported)
}

// MissingCapabilities is not supported outside Linux; it returns
// ErrNotSupported.
func MissingCapabilities(procPath string) ([]string, error) {
	return nil, ErrNotSupported
}
