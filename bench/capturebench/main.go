// Command nta-capture-bench runs the flowagg capture (Capturer + Aggregator)
// on interfaces until SIGINT or SIGTERM, then prints one JSON line with the
// kernel's packet and drop counts, what the flow tables counted, and the
// process's CPU time. bench/capture.sh drives it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/afpacket"
)

type result struct {
	Interfaces    []string `json:"interfaces"`
	KernelPackets uint64   `json:"kernel_packets"`
	KernelDrops   uint64   `json:"kernel_drops"`
	FreezeQueue   uint64   `json:"freeze_queue"`
	TablePackets  uint64   `json:"table_packets"`
	TableBytes    uint64   `json:"table_bytes"`
	Flows         int      `json:"flows"`
	UserSeconds   float64  `json:"cpu_user_seconds"`
	SysSeconds    float64  `json:"cpu_sys_seconds"`
	WallSeconds   float64  `json:"wall_seconds"`
}

func main() {
	var cfg afpacket.CaptureConfig
	iface := flag.String("iface", "", "interface name or glob to capture on")
	flag.IntVar(&cfg.BlockSize, "block-size", afpacket.DefaultBlockSize, "ring block size in bytes")
	flag.IntVar(&cfg.NumBlocks, "blocks", afpacket.DefaultNumBlocks, "ring blocks")
	flag.DurationVar(&cfg.BlockTimeout, "block-timeout", afpacket.DefaultBlockTimeout, "ring block timeout")
	flag.IntVar(&cfg.Snaplen, "snaplen", afpacket.DefaultSnaplen, "bytes of each frame copied into the ring")
	flag.IntVar(&cfg.Fanout, "fanout", 1, "sockets per interface (PACKET_FANOUT_HASH)")
	bpfText := flag.String("bpf", "", "capture filter as printed by tcpdump -ddd")
	verbose := flag.Bool("v", false, "log capture events to stderr")
	watch := flag.Duration("watch", 0, "read kernel statistics this often and report drops as they happen (0: off)")
	flag.Parse()
	if *iface == "" {
		fmt.Fprintln(os.Stderr, "nta-capture-bench: -iface is required")
		os.Exit(2)
	}
	cfg.Selector = afpacket.Selector{Names: []string{*iface}}
	var err error
	if cfg.Filter, err = afpacket.ParseBPF(*bpfText); err != nil {
		fmt.Fprintln(os.Stderr, "nta-capture-bench:", err)
		os.Exit(2)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	agg := flowagg.NewAggregator(flowagg.Config{})
	c, err := afpacket.NewCapturer(cfg, agg, nil, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nta-capture-bench:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	runCtx, cancelRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	fmt.Fprintln(os.Stderr, "nta-capture-bench: running")
	if *watch > 0 {
		go watchDrops(ctx, c, *watch, start)
	}

	select {
	case <-ctx.Done():
	case err := <-done:
		fmt.Fprintln(os.Stderr, "nta-capture-bench:", err)
		os.Exit(1)
	}
	// Read everything while the interfaces are still captured, then stop.
	var res result
	for _, s := range c.Stats() {
		res.Interfaces = append(res.Interfaces, s.Name)
		res.KernelPackets += s.Packets
		res.KernelDrops += s.Drops
		res.FreezeQueue += s.FreezeQueue
	}
	for _, s := range agg.Snapshots(context.Background()) {
		res.TablePackets += s.Total.Packets
		res.TableBytes += s.Total.Bytes
		res.Flows += len(s.Flows)
	}
	cancelRun()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "nta-capture-bench:", err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		res.UserSeconds = time.Duration(ru.Utime.Nano()).Seconds()
		res.SysSeconds = time.Duration(ru.Stime.Nano()).Seconds()
	}
	res.WallSeconds = time.Since(start).Seconds()
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

// watchDrops prints when the kernel drops frames, to tell a burst at start
// from steady loss.
func watchDrops(ctx context.Context, c *afpacket.Capturer, every time.Duration, start time.Time) {
	var last, lastPkts uint64
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var drops, pkts uint64
		for _, s := range c.Stats() {
			drops += s.Drops
			pkts += s.Packets
		}
		if drops != last {
			fmt.Fprintf(os.Stderr, "nta-capture-bench: t=%.3fs packets=%d (+%d) drops=%d (+%d)\n",
				time.Since(start).Seconds(), pkts, pkts-lastPkts, drops, drops-last)
		}
		last, lastPkts = drops, pkts
	}
}
