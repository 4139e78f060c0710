package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"

	"github.com/tangfeixiong/nta/collector"
	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/afpacket"
	"github.com/tangfeixiong/nta/topology"
)

// flowFlags configure packet capture and the flow table (--collector.flows.*).
type flowFlags struct {
	interfaces, roles, exclude []string
	granularity                string
	maxPerIf, maxTotal         int
	idle, arpWindow            time.Duration
	blockSize, blocks, fanout  int
	snaplen                    int
	blockTimeout               time.Duration
	filter, filterBPF          string
	maxIfaceRing, maxTotalRing units.Base2Bytes
}

func addFlowFlags(app *kingpin.Application) *flowFlags {
	f := &flowFlags{}
	p := "collector.flows."
	app.Flag(p+"interfaces", "Capture on interfaces of the host namespace whose name matches these globs (repeatable).").StringsVar(&f.interfaces)
	app.Flag(p+"roles", "Capture on interfaces with these topology roles: "+strings.Join(topology.KnownRoles, ", ")+", or none (only --collector.flows.interfaces) (repeatable).").
		Default(topology.RoleContainerVeth, topology.RoleVMTap).StringsVar(&f.roles)
	app.Flag(p+"exclude", "Never capture on interfaces matching these globs (repeatable).").StringsVar(&f.exclude)
	app.Flag(p+"granularity", "Flow labels: 5tuple (src, dst, ports, proto), port (server port kept, ephemeral side folded), host (address pair), workload (container pair).").
		Default("port").EnumVar(&f.granularity, "5tuple", "full", "port", "host", "workload")
	app.Flag(p+"max-flows-per-interface", "Hard budget of flow series per interface; the rest fold into one overflow series.").Default("10000").IntVar(&f.maxPerIf)
	app.Flag(p+"max-flows", "Hard budget of flow series over all interfaces.").Default("50000").IntVar(&f.maxTotal)
	app.Flag(p+"idle-timeout", "A flow without packets for this long leaves the table and /metrics.").Default("5m").DurationVar(&f.idle)
	app.Flag(p+"arp-conflict-window", "One IP claimed by two MACs within this window counts as an ARP conflict.").Default("10s").DurationVar(&f.arpWindow)
	app.Flag(p+"ring.block-size", "TPACKET_V3 ring block size in bytes (multiple of the page size).").Default(fmt.Sprint(afpacket.DefaultBlockSize)).IntVar(&f.blockSize)
	app.Flag(p+"ring.blocks", "TPACKET_V3 ring blocks per socket.").Default(fmt.Sprint(afpacket.DefaultNumBlocks)).IntVar(&f.blocks)
	app.Flag(p+"ring.block-timeout", "How long the kernel fills a block before handing it over.").Default(afpacket.DefaultBlockTimeout.String()).DurationVar(&f.blockTimeout)
	app.Flag(p+"ring.max-interface-bytes", "Upper bound of the ring memory of one interface (block size × blocks × fanout); larger rings are refused at start.").
		Default(units.Base2Bytes(afpacket.DefaultMaxInterfaceRingBytes).String()).BytesVar(&f.maxIfaceRing)
	app.Flag(p+"ring.max-total-bytes", "Upper bound of the ring memory of all captured interfaces; interfaces beyond it are not captured (the flows collector fails).").
		Default(units.Base2Bytes(afpacket.DefaultMaxTotalRingBytes).String()).BytesVar(&f.maxTotalRing)
	app.Flag(p+"fanout", "Sockets (and goroutines) per interface in a PACKET_FANOUT group; 1 = none.").Default("1").IntVar(&f.fanout)
	app.Flag(p+"snaplen", "Bytes of each frame copied to user space (headers only are needed).").Default(fmt.Sprint(afpacket.DefaultSnaplen)).IntVar(&f.snaplen)
	app.Flag(p+"filter", "Capture filter in tcpdump syntax; needs a build with -tags pcap (see --collector.flows.filter-bpf otherwise).").StringVar(&f.filter)
	app.Flag(p+"filter-bpf", "Capture filter as a compiled classic BPF program, the output of `tcpdump -ddd EXPR` (pure-Go builds).").StringVar(&f.filterBPF)
	return f
}

// aggregatorConfig is the flow table part of the flags.
func (f *flowFlags) aggregatorConfig() (flowagg.Config, error) {
	g, err := flowagg.ParseGranularity(f.granularity)
	if err != nil {
		return flowagg.Config{}, err
	}
	return flowagg.Config{
		MaxFlowsPerInterface: f.maxPerIf, MaxFlowsTotal: f.maxTotal,
		IdleTimeout: f.idle, Granularity: g, ArpConflictWindow: f.arpWindow,
	}, nil
}

// startFlows builds the aggregator and starts the capture loop in the
// background. Errors here are the operator's to fix (bad filter, no
// privilege) and stop the exporter with a message saying what to do.
func startFlows(ctx context.Context, f *flowFlags, src *collector.Sources, logger *slog.Logger) (*collector.Flows, error) {
	cfg, err := f.aggregatorConfig()
	if err != nil {
		return nil, err
	}
	var filter string
	if f.filter != "" && f.filterBPF != "" {
		return nil, fmt.Errorf("give either --collector.flows.filter or --collector.flows.filter-bpf, not both")
	}
	var roles []string
	for _, r := range f.roles {
		if r != "none" {
			roles = append(roles, r)
		}
	}
	if err := topology.ValidateRoles(roles); err != nil {
		return nil, fmt.Errorf("--collector.flows.roles: %w", err)
	}
	capCfg := afpacket.CaptureConfig{
		BlockSize: f.blockSize, NumBlocks: f.blocks, BlockTimeout: f.blockTimeout,
		Snaplen: f.snaplen, Fanout: f.fanout,
		MaxInterfaceRingBytes: int(f.maxIfaceRing), MaxTotalRingBytes: int(f.maxTotalRing),
		Selector: afpacket.Selector{Names: f.interfaces, Roles: roles, Exclude: f.exclude},
	}
	switch {
	case f.filter != "":
		filter = f.filter
		if capCfg.Filter, err = afpacket.CompileFilter(f.filter, f.snaplen); err != nil {
			return nil, fmt.Errorf("--collector.flows.filter %q: %w", filter, err)
		}
	case f.filterBPF != "":
		text := f.filterBPF
		if strings.HasPrefix(text, "@") { // @file
			b, err := os.ReadFile(text[1:])
			if err != nil {
				return nil, fmt.Errorf("--collector.flows.filter-bpf: %w", err)
			}
			text = string(b)
		}
		if capCfg.Filter, err = afpacket.ParseBPF(text); err != nil {
			return nil, fmt.Errorf("--collector.flows.filter-bpf: %w", err)
		}
		if capCfg.Filter == nil {
			return nil, fmt.Errorf("--collector.flows.filter-bpf=%s holds no program: give the output of `tcpdump -ddd EXPR`, or leave the flag out to capture everything", f.filterBPF)
		}
	}
	agg := flowagg.NewAggregator(cfg)
	capt, err := afpacket.NewCapturer(capCfg, agg, collector.CaptureRoles{Src: src}, logger.With("component", "capture"))
	if err != nil {
		return nil, err
	}
	go func() {
		if err := capt.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error("packet capture stopped; flow metrics are frozen", "err", err)
		}
	}()
	return &collector.Flows{Aggregator: agg, Capture: capt, Names: &collector.NameResolver{}}, nil
}
