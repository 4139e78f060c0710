package dockerview

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// refreshesContainer reports whether a container event may change what the
// view shows of that container; each such event costs one inspect.
func refreshesContainer(a events.Action) bool {
	switch a {
	case events.ActionCreate, events.ActionStart, events.ActionRestart, events.ActionStop,
		events.ActionDie, events.ActionPause, events.ActionUnPause, events.ActionRename,
		events.ActionUpdate:
		return true
	}
	return false
}

// eventFilter selects the container and network events the watcher handles,
// so exec and health-check events never reach it.
func eventFilter() filters.Args {
	f := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("type", string(events.NetworkEventType)),
	)
	for _, a := range []events.Action{
		events.ActionCreate, events.ActionStart, events.ActionRestart, events.ActionStop,
		events.ActionDie, events.ActionPause, events.ActionUnPause, events.ActionRename,
		events.ActionUpdate, events.ActionDestroy, // containers (create/destroy also networks)
		events.ActionConnect, events.ActionDisconnect, // network <-> container
		events.ActionRemove, events.ActionDelete, // network removal (swarm)
	} {
		f.Add("event", string(a))
	}
	return f
}

// session runs one connection to the engine: subscribe to events, full sync,
// then apply events and periodic resyncs until an error. synced reports
// whether the full sync succeeded (the engine was reachable).
func (w *Watcher) session(ctx context.Context) (synced bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the event stream

	pctx, pcancel := w.callCtx(ctx)
	ping, err := w.api.Ping(pctx)
	pcancel()
	if err != nil {
		return false, fmt.Errorf("ping: %w", err)
	}
	// Subscribe before listing so that nothing happening during the sync is
	// missed; events queue up in the stream until the sync is done.
	msgs, errs, err := w.subscribe(ctx, cancel)
	if err != nil {
		return false, err
	}
	if err := w.fullSync(ctx); err != nil {
		return false, err
	}
	w.markUp(ping.APIVersion) // log before publishing: readers see the line first
	w.publish()

	tick := time.NewTicker(w.resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err, ok := <-errs:
			if !ok || err == nil {
				err = io.EOF
			}
			return true, fmt.Errorf("event stream: %w", err)
		case m := <-msgs:
			if err := w.handle(ctx, m); err != nil {
				return true, err
			}
		case <-tick.C:
			if err := w.fullSync(ctx); err != nil {
				return true, fmt.Errorf("resync: %w", err)
			}
			w.publish()
		}
	}
}

// subscribe opens the event stream. The client's Events blocks until the
// engine answers the request, so it runs under the per-call deadline: on
// expiry cancel (which ends the stream's context) unblocks it.
func (w *Watcher) subscribe(ctx context.Context, cancel context.CancelFunc) (<-chan events.Message, <-chan error, error) {
	type stream struct {
		msgs <-chan events.Message
		errs <-chan error
	}
	ch := make(chan stream, 1)
	go func() {
		m, e := w.api.Events(ctx, events.ListOptions{Filters: eventFilter()})
		ch <- stream{m, e}
	}()
	t := time.NewTimer(w.timeout)
	defer t.Stop()
	select {
	case s := <-ch:
		return s.msgs, s.errs, nil
	case <-t.C:
		cancel()
		return nil, nil, fmt.Errorf("subscribe to events: %w", context.DeadlineExceeded)
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// handle applies one event to the cache, touching only what changed.
func (w *Watcher) handle(ctx context.Context, m events.Message) error {
	var err error
	switch m.Type {
	case events.ContainerEventType:
		switch m.Action {
		case events.ActionDestroy:
			if _, ok := w.ctrs[m.Actor.ID]; ok {
				delete(w.ctrs, m.Actor.ID)
				w.publish()
			}
		default:
			if refreshesContainer(m.Action) {
				err = w.refreshContainer(ctx, m.Actor.ID)
			}
		}
	case events.NetworkEventType:
		switch m.Action {
		case events.ActionCreate, events.ActionDestroy, events.ActionRemove, events.ActionDelete:
			err = w.refreshNetworks(ctx)
		case events.ActionConnect, events.ActionDisconnect:
			if id := m.Actor.Attributes["container"]; id != "" {
				err = w.refreshContainer(ctx, id)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("event %s %s %.12s: %w", m.Type, m.Action, m.Actor.ID, err)
	}
	return nil
}

// refreshContainer re-inspects one container; a vanished one is removed.
func (w *Watcher) refreshContainer(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	c, found, err := w.inspect(ctx, id)
	if err != nil {
		return err
	}
	if !found {
		if _, ok := w.ctrs[id]; !ok {
			return nil
		}
		delete(w.ctrs, id)
	} else {
		w.ctrs[c.ID] = c
	}
	w.publish()
	return nil
}

// refreshNetworks re-lists the networks.
func (w *Watcher) refreshNetworks(ctx context.Context) error {
	nets, err := w.listNetworks(ctx)
	if err != nil {
		return err
	}
	w.nets = nets
	w.publish()
	return nil
}
