package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/libvirtview"
	"github.com/tangfeixiong/nta/topology"
)

// runTopology prints the host graph once.
func runTopology(o options, format string, withDocker, withLibvirt bool, out io.Writer, logger *slog.Logger) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	warnPrivileges(o.procPath, logger)
	snap, err := newScanner(o, logger).Scan(ctx)
	if err != nil {
		logger.Error("cannot read the host's network", "err", err)
		return 1
	}
	var views topology.Views
	if withDocker {
		views.Docker = dockerOnce(ctx, o, logger)
	}
	if withLibvirt {
		views.Libvirt = libvirtOnce(ctx, o, logger)
	}
	g := topology.Build(snap, views)
	switch format {
	case "json":
		err = g.WriteJSON(out)
	case "dot":
		err = g.WriteDOT(out)
	default:
		err = g.WriteText(out)
	}
	if err != nil {
		logger.Error("write topology", "err", err)
		return 1
	}
	return 0
}

// dockerOnce syncs a Docker view once; nil (with a warning) when Docker
// cannot be reached, so the kernel's view still prints.
func dockerOnce(ctx context.Context, o options, logger *slog.Logger) *dockerview.View {
	w, err := newDocker(o, logger)
	if err != nil {
		logger.Warn("docker client", "err", err)
		return nil
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(ctx, o.dockerTO+time.Second)
	defer cancel()
	go w.Run(ctx)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := w.View()
		if err == nil {
			return &v
		}
		select {
		case <-ctx.Done():
			logger.Warn("docker not reachable, printing the kernel's view only", "err", err)
			return nil
		case <-tick.C:
		}
	}
}

// libvirtOnce syncs a libvirt view once; nil (with a warning) when libvirtd
// cannot be reached, so the rest still prints.
func libvirtOnce(ctx context.Context, o options, logger *slog.Logger) *libvirtview.View {
	w, err := newLibvirt(o, logger)
	if err != nil {
		logger.Warn("libvirt client", "err", err)
		return nil
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(ctx, o.libvirt.Timeout+time.Second)
	defer cancel()
	go w.Run(ctx)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := w.View()
		if err == nil {
			return &v
		}
		select {
		case <-ctx.Done():
			logger.Warn("libvirt not reachable, printing without VMs", "err", err)
			return nil
		case <-tick.C:
		}
	}
}
