package afpacket

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/net/bpf"
)

// Defaults of CaptureConfig. A ring holds BlockSize*NumBlocks bytes of kernel
// memory per interface (and per fanout member): 4 MiB by default.
const (
	DefaultBlockSize    = 256 << 10
	DefaultNumBlocks    = 16
	DefaultBlockTimeout = 100 * time.Millisecond
	DefaultSnaplen      = 256
	DefaultRescan       = 10 * time.Second
	// DefaultMaxInterfaceRingBytes bounds the rings of one interface
	// (BlockSize × NumBlocks × Fanout): 16 times the default ring.
	DefaultMaxInterfaceRingBytes = 64 << 20
	// DefaultMaxTotalRingBytes bounds the rings of all captured
	// interfaces together: 256 interfaces with the default ring.
	DefaultMaxTotalRingBytes = 1 << 30
)

// Errors of capture that no retry fixes, and of interfaces left out.
var (
	// ErrFilterRejected: the kernel refused the BPF filter (SO_ATTACH_FILTER).
	ErrFilterRejected = errors.New("the kernel rejected the capture filter")
	// ErrRingBudget: another interface's rings would exceed MaxTotalRingBytes.
	ErrRingBudget = errors.New("ring memory budget exhausted")
	// ErrInterfacesFailed: some selected interfaces are not being captured.
	ErrInterfacesFailed = errors.New("capture failed")
)

// CaptureConfig configures AF_PACKET capture.
type CaptureConfig struct {
	// BlockSize is the size in bytes of one TPACKET_V3 ring block; a multiple of the page size.
	BlockSize int
	// NumBlocks is the number of blocks in each ring.
	NumBlocks int
	// BlockTimeout is how long the kernel fills a block before handing a partly
	// filled one to user space (retire_blk_tov, millisecond resolution).
	BlockTimeout time.Duration
	// Snaplen is how many bytes of each frame are copied into the ring; the flow
	// table needs headers only. Implemented by the socket filter's return value.
	Snaplen int
	// Fanout is the number of sockets and goroutines per interface joined in a
	// PACKET_FANOUT_HASH group (flows stay on one member). 0 or 1: one socket.
	Fanout int
	// Filter is a classic BPF program attached to every socket (see ParseBPF and
	// CompileFilter). Empty: everything. Return values above Snaplen are lowered to it.
	Filter []bpf.RawInstruction
	// Selector chooses interfaces by name and role.
	Selector Selector
	// Rescan is how often the interface list is re-read in addition to reacting
	// to netlink link notifications.
	Rescan time.Duration
	// MaxInterfaceRingBytes bounds BlockSize × NumBlocks × Fanout, the
	// kernel memory the rings of one interface pin. 0: DefaultMaxInterfaceRingBytes.
	MaxInterfaceRingBytes int
	// MaxTotalRingBytes bounds the ring memory of all captured interfaces;
	// interfaces beyond it are not captured (and reported by Err).
	// 0: DefaultMaxTotalRingBytes.
	MaxTotalRingBytes int
}

// ringBytesPerInterface is the kernel memory of one interface's rings.
func (cfg CaptureConfig) ringBytesPerInterface() int {
	return cfg.BlockSize * cfg.NumBlocks * cfg.Fanout
}

// RoleSource tells the capture which interfaces have which role. The
// topology layer implements it (and owns the role names); without one only
// Selector.Names select.
type RoleSource interface {
	// InterfaceRoles returns ifname → roles for the interfaces of the host
	// network namespace. On error captured interfaces are kept rather than
	// dropped for lack of a role, and the previous roles stay in force.
	InterfaceRoles(ctx context.Context) (map[string][]string, error)
}

// rolesTimeout bounds one RoleSource call during a rescan.
const rolesTimeout = 5 * time.Second

// IfaceStats are the kernel's counters of one captured interface, summed over
// its fanout members and accumulated since capture started on it (the kernel
// resets PACKET_STATISTICS on every read).
type IfaceStats struct {
	// Name is the interface name.
	Name string
	// Index is the interface index.
	Index int
	// Sockets is the number of AF_PACKET sockets (fanout members) on the interface.
	Sockets int
	// Packets counts frames the kernel passed the socket filter, including dropped ones.
	Packets uint64
	// Drops counts frames dropped because the ring was full.
	Drops uint64
	// FreezeQueue counts how often the ring froze because user space had not returned blocks.
	FreezeQueue uint64
}

// ErrNotSupported is returned on platforms without AF_PACKET.
var ErrNotSupported = errors.New("AF_PACKET capture is only supported on Linux")

// withDefaults fills zero fields and checks the rest.
func (cfg CaptureConfig) withDefaults() (CaptureConfig, error) {
	if cfg.BlockSize == 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.NumBlocks == 0 {
		cfg.NumBlocks = DefaultNumBlocks
	}
	if cfg.BlockTimeout == 0 {
		cfg.BlockTimeout = DefaultBlockTimeout
	}
	if cfg.Snaplen == 0 {
		cfg.Snaplen = DefaultSnaplen
	}
	if cfg.Rescan == 0 {
		cfg.Rescan = DefaultRescan
	}
	if cfg.Fanout < 1 {
		cfg.Fanout = 1
	}
	if cfg.MaxInterfaceRingBytes == 0 {
		cfg.MaxInterfaceRingBytes = DefaultMaxInterfaceRingBytes
	}
	if cfg.MaxTotalRingBytes == 0 {
		cfg.MaxTotalRingBytes = DefaultMaxTotalRingBytes
	}
	page := os.Getpagesize()
	switch {
	case cfg.BlockSize < page || cfg.BlockSize%page != 0:
		return cfg, fmt.Errorf("capture block size %d: must be a positive multiple of the page size %d", cfg.BlockSize, page)
	case cfg.NumBlocks < 2:
		return cfg, fmt.Errorf("capture ring of %d blocks: use at least 2 so the kernel can fill one while the other is read", cfg.NumBlocks)
	case cfg.BlockTimeout < time.Millisecond:
		return cfg, fmt.Errorf("capture block timeout %s: use at least 1ms", cfg.BlockTimeout)
	case cfg.Snaplen < 64 || cfg.Snaplen > cfg.BlockSize/2:
		return cfg, fmt.Errorf("capture snaplen %d: use 64 to half the block size (%d)", cfg.Snaplen, cfg.BlockSize/2)
	case cfg.Fanout > 64:
		return cfg, fmt.Errorf("capture fanout %d: use at most 64 sockets per interface", cfg.Fanout)
	case cfg.BlockSize > 1<<30 || cfg.NumBlocks > 1<<20 || cfg.Fanout > 64:
		return cfg, fmt.Errorf("capture ring of %d blocks of %d bytes: too large (--collector.flows.ring.block-size, --collector.flows.ring.blocks)", cfg.NumBlocks, cfg.BlockSize)
	case cfg.ringBytesPerInterface() > cfg.MaxInterfaceRingBytes:
		return cfg, fmt.Errorf("capture rings of %d bytes per interface (block size %d × %d blocks × fanout %d) exceed --collector.flows.ring.max-interface-bytes=%d: lower --collector.flows.ring.blocks or .ring.block-size (the default ring is %d bytes), or raise the limit",
			cfg.ringBytesPerInterface(), cfg.BlockSize, cfg.NumBlocks, cfg.Fanout, cfg.MaxInterfaceRingBytes, DefaultBlockSize*DefaultNumBlocks)
	case cfg.MaxTotalRingBytes < cfg.ringBytesPerInterface():
		return cfg, fmt.Errorf("--collector.flows.ring.max-total-bytes=%d is smaller than the rings of one interface (%d bytes): no interface could be captured", cfg.MaxTotalRingBytes, cfg.ringBytesPerInterface())
	case cfg.Rescan < 100*time.Millisecond:
		return cfg, fmt.Errorf("interface rescan interval %s: use at least 100ms", cfg.Rescan)
	case cfg.Selector.Empty():
		return cfg, errors.New("capture selects no interface — name interfaces (globs) or roles")
	}
	if err := cfg.Selector.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}
