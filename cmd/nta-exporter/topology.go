package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/tangfeixiong/nta/topology"
	"github.com/tangfeixiong/nta/topoweb"
)

// topoSources are the daemons the topology command asks.
type topoSources struct{ docker, libvirt, ovs bool }

// runTopology prints the host graph once.
func runTopology(o options, format string, ask topoSources, out io.Writer, logger *slog.Logger) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	warnPrivileges(o.procPath, logger)
	snap, err := newScanner(o, logger).Scan(ctx)
	if err != nil {
		logger.Error("cannot read the host's network", "err", err)
		return 1
	}
	var views topology.Views
	if ask.docker {
		if w, err := newDocker(o, logger); err != nil {
			logger.Warn("docker client", "err", err)
		} else {
			views.Docker = viewOnce(ctx, o.dockerTO, w.Run, w.View, func() { _ = w.Close() }, "docker not reachable, printing without containers", logger)
		}
	}
	if ask.libvirt {
		if w, err := newLibvirt(o, logger); err != nil {
			logger.Warn("libvirt client", "err", err)
		} else {
			views.Libvirt = viewOnce(ctx, o.libvirt.Timeout, w.Run, w.View, w.Close, "libvirt not reachable, printing without VMs", logger)
		}
	}
	if ask.ovs {
		if w, err := newOVS(o, logger); err != nil {
			logger.Warn("OVS client", "err", err)
		} else {
			views.OVS = viewOnce(ctx, o.ovs.Timeout, w.Run, w.View, w.Close, "OVSDB not reachable, printing without Open vSwitch", logger)
		}
	}
	g := topology.Build(snap, views)
	switch format {
	case "json":
		err = g.WriteJSON(out)
	case "dot":
		err = g.WriteDOT(out)
	case "svg":
		err = writeSVG(ctx, g, out)
	default:
		err = g.WriteText(out)
	}
	if err != nil {
		logger.Error("write topology", "err", err)
		return 1
	}
	return 0
}

// writeSVG lays g out with the embedded Graphviz and writes the SVG.
func writeSVG(ctx context.Context, g *topology.Graph, out io.Writer) error {
	r, err := topoweb.NewRenderer(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	svg, _, err := r.SVG(ctx, g)
	if err != nil {
		return err
	}
	_, err = out.Write(svg)
	return err
}

// viewOnce runs a daemon's watcher until its first view, for at most
// timeout plus a second; nil (with the warning unreachable) when the daemon
// cannot be reached, so the rest still prints.
func viewOnce[V any](ctx context.Context, timeout time.Duration, run func(context.Context), view func() (V, error), closeFn func(), unreachable string, logger *slog.Logger) *V {
	defer closeFn()
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Second)
	defer cancel()
	go run(ctx)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := view()
		if err == nil {
			return &v
		}
		select {
		case <-ctx.Done():
			logger.Warn(unreachable, "err", err)
			return nil
		case <-tick.C:
		}
	}
}
