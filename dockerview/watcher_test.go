package dockerview

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// baseFake is an engine with the three default networks, one user network
// and two containers (one running with a published port, one exited).
func baseFake() *fake {
	f := newFake()
	f.setNet(mkNet("bridge", "bridge", "172.17.0.0/16", "172.17.0.1",
		map[string]string{optBridgeName: "docker0", optDefaultBridge: "true"}))
	f.setNet(mkNet("host", "host", "", "", nil))
	f.setNet(mkNet("none", "null", "", "", nil))
	f.setNet(mkNet("appnet", "bridge", "10.9.0.0/24", "10.9.0.1", nil))
	f.setCtr(mkCtr("web", true, "default",
		map[string]string{"bridge": "172.17.0.2/16,02:42:AC:11:00:02,172.17.0.1"},
		nat.PortMap{"80/tcp": {{HostIP: "0.0.0.0", HostPort: "8080"}}, "443/tcp": nil}))
	f.setCtr(mkCtr("old", false, "appnet", map[string]string{"appnet": ""}, nil))
	return f
}

func names[T any](xs []T, name func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, name(x))
	}
	return out
}

func TestInitialSync(t *testing.T) {
	f := baseFake()
	w, logs := startWatcher(t, f, Options{})
	v := waitView(t, w, "initial sync", func(v View) bool { return !v.Synced.IsZero() })

	if got, want := names(v.Networks, func(n Network) string { return n.Name }), []string{"appnet", "bridge", "host", "none"}; !slices.Equal(got, want) {
		t.Errorf("networks %v, want %v", got, want)
	}
	br, _ := v.Network("bridge")
	if br.Bridge != "docker0" || !slices.Equal(br.Subnets, []string{"172.17.0.0/16"}) || !slices.Equal(br.Gateways, []string{"172.17.0.1"}) {
		t.Errorf("bridge network %+v", br)
	}
	if app, _ := v.Network("appnet"); app.Bridge != "br-"+id64("appnet")[:12] {
		t.Errorf("appnet bridge %q", app.Bridge)
	}
	if h, _ := v.Network("host"); h.Bridge != "" {
		t.Errorf("host network bridge %q, want empty", h.Bridge)
	}
	if got, want := names(v.Containers, func(c Container) string { return c.Name }), []string{"old", "web"}; !slices.Equal(got, want) {
		t.Fatalf("containers %v, want %v", got, want)
	}
	web, _ := v.Container("web")
	if web.State != "running" || web.NetworkMode != "bridge" || web.PID != 4242 || web.SandboxKey == "" {
		t.Errorf("web %+v", web)
	}
	if len(web.Endpoints) != 1 || web.Endpoints[0].IPv4 != "172.17.0.2" || web.Endpoints[0].MAC != "02:42:ac:11:00:02" {
		t.Errorf("web endpoints %+v", web.Endpoints)
	}
	if want := []Port{{HostIP: "0.0.0.0", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}; !slices.Equal(web.Ports, want) {
		t.Errorf("web ports %+v, want %+v", web.Ports, want)
	}
	old, _ := v.Container("old")
	if old.State != "exited" || len(old.Endpoints) != 0 || old.SandboxKey != "" || old.PID != 0 {
		t.Errorf("old %+v", old)
	}
	if n := logs.count("docker engine available"); n != 1 {
		t.Errorf("%d 'available' log lines, want 1:\n%s", n, logs)
	}
}

func TestEventsAddStopRemove(t *testing.T) {
	f := baseFake()
	w, _ := startWatcher(t, f, Options{})
	waitView(t, w, "initial sync", func(v View) bool { return len(v.Containers) == 2 })
	inspects := f.callCount("ContainerInspect")

	db := mkCtr("db", true, "appnet", map[string]string{"appnet": "10.9.0.5/24,02:42:0a:09:00:05,10.9.0.1"}, nil)
	f.setCtr(db)
	f.emit(t, events.ContainerEventType, events.ActionStart, db.ID, nil)
	v := waitView(t, w, "db started", func(v View) bool { _, ok := v.Container("db"); return ok })
	c, _ := v.Container("db")
	if len(c.Endpoints) != 1 || c.Endpoints[0].Network != "appnet" || c.Endpoints[0].IPv4PrefixLen != 24 {
		t.Errorf("db endpoints %+v", c.Endpoints)
	}
	if got := f.callCount("ContainerInspect") - inspects; got != 1 {
		t.Errorf("start event cost %d inspects, want 1 (only the changed container)", got)
	}
	if f.callCount("ContainerList") != 1 {
		t.Errorf("events caused a re-list")
	}

	f.setCtr(mkCtr("db", false, "appnet", map[string]string{"appnet": ""}, nil))
	f.emit(t, events.ContainerEventType, events.ActionDie, db.ID, nil)
	v = waitView(t, w, "db exited", func(v View) bool { c, _ := v.Container("db"); return c.State == "exited" })
	if c, _ := v.Container("db"); len(c.Endpoints) != 0 || c.PID != 0 || c.SandboxKey != "" {
		t.Errorf("stopped container keeps runtime data: %+v", c)
	}

	f.delCtr(db.ID)
	f.emit(t, events.ContainerEventType, events.ActionDestroy, db.ID, nil)
	waitView(t, w, "db gone", func(v View) bool { _, ok := v.Container("db"); return !ok && len(v.Containers) == 2 })

	// rename: the event triggers an inspect that shows the new name.
	web := mkCtr("web", true, "default", map[string]string{"bridge": "172.17.0.2/16,02:42:ac:11:00:02,172.17.0.1"}, nil)
	web.Name = "/web2"
	f.setCtr(web)
	f.emit(t, events.ContainerEventType, events.ActionRename, web.ID, map[string]string{"oldName": "/web"})
	waitView(t, w, "rename", func(v View) bool { _, ok := v.Container("web2"); return ok })

	// An event for a container destroyed before we inspect it is harmless.
	f.emit(t, events.ContainerEventType, events.ActionStart, id64("ghost"), nil)
	// exec/health events are ignored (and filtered by the engine anyway).
	// The event channel is unbuffered: once an emit returns, the previous
	// event has been handled completely.
	f.emit(t, events.ContainerEventType, "exec_start: sh", web.ID, nil)
	before := f.callCount("ContainerInspect")
	f.emit(t, events.ContainerEventType, events.ActionStart, web.ID, nil) // barrier
	waitView(t, w, "barrier", func(View) bool { return f.callCount("ContainerInspect") == before+1 })
}

func TestNetworkCreateConnectDisconnect(t *testing.T) {
	f := baseFake()
	w, _ := startWatcher(t, f, Options{})
	waitView(t, w, "initial sync", func(v View) bool { return len(v.Networks) == 4 })

	back := mkNet("backnet", "bridge", "10.10.0.0/24", "10.10.0.1",
		map[string]string{optBridgeName: "nta-back0"})
	f.setNet(back)
	f.emit(t, events.NetworkEventType, events.ActionCreate, back.ID, map[string]string{"name": "backnet", "type": "bridge"})
	v := waitView(t, w, "backnet", func(v View) bool { _, ok := v.Network("backnet"); return ok })
	if n, _ := v.Network("backnet"); n.Bridge != "nta-back0" {
		t.Errorf("custom bridge name %q, want nta-back0", n.Bridge)
	}

	web := mkCtr("web", true, "default", map[string]string{
		"bridge":  "172.17.0.2/16,02:42:ac:11:00:02,172.17.0.1",
		"backnet": "10.10.0.7/24,02:42:0a:0a:00:07,10.10.0.1",
	}, nil)
	f.setCtr(web)
	f.emit(t, events.NetworkEventType, events.ActionConnect, back.ID, map[string]string{"container": web.ID, "name": "backnet", "type": "bridge"})
	v = waitView(t, w, "connect", func(v View) bool { c, _ := v.Container("web"); return len(c.Endpoints) == 2 })
	c, _ := v.Container("web")
	if got := names(c.Endpoints, func(e Endpoint) string { return e.Network }); !slices.Equal(got, []string{"backnet", "bridge"}) {
		t.Errorf("endpoints not sorted by network name: %v", got)
	}
	if e := c.Endpoints[0]; e.NetworkID != back.ID || e.IPv4 != "10.10.0.7" || e.Gateway != "10.10.0.1" {
		t.Errorf("backnet endpoint %+v", e)
	}

	f.setCtr(mkCtr("web", true, "default", map[string]string{"bridge": "172.17.0.2/16,02:42:ac:11:00:02,172.17.0.1"}, nil))
	f.emit(t, events.NetworkEventType, events.ActionDisconnect, back.ID, map[string]string{"container": web.ID})
	waitView(t, w, "disconnect", func(v View) bool { c, _ := v.Container("web"); return len(c.Endpoints) == 1 })

	f.delNet(back.ID)
	f.emit(t, events.NetworkEventType, events.ActionDestroy, back.ID, nil)
	waitView(t, w, "network destroyed", func(v View) bool { _, ok := v.Network("backnet"); return !ok })
}

func TestEngineGoesAwayAndComesBack(t *testing.T) {
	f := baseFake()
	w, logs := startWatcher(t, f, Options{})
	waitView(t, w, "initial sync", func(v View) bool { return len(v.Containers) == 2 })

	f.kill()
	err := waitErr(t, w)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("View error %v does not wrap ErrUnavailable", err)
	}
	if v, _ := w.View(); len(v.Containers) != 0 || len(v.Networks) != 0 {
		t.Errorf("View returned data while unavailable: %+v", v)
	}
	// Let it retry many times (backoff 5ms..40ms): one log line only.
	deadline := time.Now().Add(2 * time.Second)
	for f.callCount("Ping") < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_, err = w.View()
	if !strings.Contains(err.Error(), "not found — is dockerd running? set DOCKER_HOST") {
		t.Errorf("error does not say what to do: %v", err)
	}
	if n := logs.count("docker engine unavailable"); n != 1 {
		t.Errorf("%d 'unavailable' log lines after %d retries, want 1:\n%s", n, f.callCount("Ping"), logs)
	}

	// While down, a container appears: the full sync after reconnect finds it.
	f.setCtr(mkCtr("late", true, "bridge", map[string]string{"bridge": "172.17.0.9/16,02:42:ac:11:00:09,172.17.0.1"}, nil))
	f.revive()
	v := waitView(t, w, "recovery", func(v View) bool { return len(v.Containers) == 3 })
	if _, ok := v.Container("late"); !ok {
		t.Errorf("container created while down is missing")
	}
	if n := logs.count("docker engine available"); n != 2 {
		t.Errorf("%d 'available' log lines, want 2 (start, recovery):\n%s", n, logs)
	}
	// Events work on the new stream.
	f.delCtr(id64("late"))
	f.emit(t, events.ContainerEventType, events.ActionDestroy, id64("late"), nil)
	waitView(t, w, "destroy after reconnect", func(v View) bool { return len(v.Containers) == 2 })
}

// A dockerd restart (stream closes, next attempt succeeds) logs no
// 'unavailable' line, and the resync afterwards picks up changes.
func TestEventStreamDropReconnects(t *testing.T) {
	f := baseFake()
	w, logs := startWatcher(t, f, Options{})
	waitView(t, w, "initial sync", func(v View) bool { return len(v.Containers) == 2 })
	f.setCtr(mkCtr("new", false, "bridge", nil, nil))
	f.mu.Lock()
	f.dropStreams()
	f.mu.Unlock()
	waitView(t, w, "resync after reconnect", func(v View) bool { return len(v.Containers) == 3 })
	if n := logs.count("docker engine unavailable"); n != 0 {
		t.Errorf("a quick reconnect logged unavailability:\n%s", logs)
	}
	if f.callCount("Events") != 2 {
		t.Errorf("Events called %d times, want 2", f.callCount("Events"))
	}
}

func TestHungEngineRespectsDeadline(t *testing.T) {
	t.Run("from start", func(t *testing.T) {
		f := baseFake()
		f.setHang(true)
		start := time.Now()
		w, logs := startWatcher(t, f, Options{Timeout: 50 * time.Millisecond})
		var err error
		for err == nil || !errors.Is(err, context.DeadlineExceeded) {
			if time.Since(start) > 3*time.Second {
				t.Fatalf("View error %v after 3s; the deadline was not applied", err)
			}
			time.Sleep(5 * time.Millisecond)
			_, err = w.View()
		}
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "did not answer within 50ms") {
			t.Errorf("error %v", err)
		}
		time.Sleep(200 * time.Millisecond) // several more timed-out attempts
		if n := logs.count("docker engine unavailable"); n != 1 {
			t.Errorf("%d unavailable lines, want 1:\n%s", n, logs)
		}
	})
	t.Run("during an event", func(t *testing.T) {
		f := baseFake()
		w, _ := startWatcher(t, f, Options{Timeout: 50 * time.Millisecond})
		waitView(t, w, "initial sync", func(v View) bool { return len(v.Containers) == 2 })
		f.setHang(true)
		start := time.Now()
		f.emit(t, events.ContainerEventType, events.ActionStart, id64("web"), nil)
		err := waitErr(t, w)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("unavailability detected after %v", d)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want deadline exceeded", err)
		}
		f.setHang(false)
		waitView(t, w, "recovery", func(v View) bool { return len(v.Containers) == 2 })
	})
	t.Run("Close while hung", func(t *testing.T) {
		f := baseFake()
		f.setHang(true)
		w := newWatcher(f, "unix:///nonexistent.sock", Options{Timeout: time.Hour})
		go w.Run(context.Background())
		time.Sleep(20 * time.Millisecond)
		done := make(chan error)
		go func() { done <- w.Close() }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("Close hangs while the engine hangs")
		}
		if _, err := w.View(); !errors.Is(err, ErrUnavailable) {
			t.Errorf("View after Close: %v", err)
		}
	})
}

func TestPeriodicResync(t *testing.T) {
	f := baseFake()
	w, _ := startWatcher(t, f, Options{Resync: 20 * time.Millisecond})
	v0 := waitView(t, w, "initial sync", func(v View) bool { return len(v.Containers) == 2 })
	// Changes without events (a lost event) are repaired by the resync.
	f.delCtr(id64("old"))
	f.setNet(mkNet("quiet", "macvlan", "192.168.7.0/24", "", nil))
	v := waitView(t, w, "resync", func(v View) bool {
		_, ok := v.Network("quiet")
		return len(v.Containers) == 1 && ok
	})
	if !v.Synced.After(v0.Synced) {
		t.Errorf("Synced not advanced: %v -> %v", v0.Synced, v.Synced)
	}
}

func TestViewIsACopy(t *testing.T) {
	f := baseFake()
	w, _ := startWatcher(t, f, Options{})
	v := waitView(t, w, "initial sync", func(v View) bool { return len(v.Containers) == 2 })
	v.Containers[1].Endpoints[0].IPv4 = "scribbled"
	v.Containers[1].Labels["app"] = "scribbled"
	v.Networks[0].Subnets[0] = "scribbled"
	v.Containers = v.Containers[:0]
	v2, err := w.View()
	if err != nil {
		t.Fatal(err)
	}
	web, _ := v2.Container("web")
	if web.Endpoints[0].IPv4 != "172.17.0.2" || web.Labels["app"] != "web" || v2.Networks[0].Subnets[0] != "10.9.0.0/24" {
		t.Errorf("caller mutation leaked into the cache: %+v %+v", web, v2.Networks[0])
	}
}

func TestViewBeforeRun(t *testing.T) {
	w := newWatcher(newFake(), "unix:///x.sock", Options{Logger: slog.New(slog.DiscardHandler)})
	v, err := w.View()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not synced") || v.Containers != nil {
		t.Errorf("View before Run = %+v, %v", v, err)
	}
	if err := w.Close(); err != nil {
		t.Error(err)
	}
	w.Run(context.Background()) // after Close: returns at once
}

func TestEventFilter(t *testing.T) {
	f := eventFilter()
	if got := f.Get("type"); !slices.Equal(sorted(got), []string{"container", "network"}) {
		t.Errorf("type filter %v", got)
	}
	for _, a := range []string{"start", "die", "destroy", "rename", "connect", "disconnect", "create"} {
		if !f.ExactMatch("event", a) {
			t.Errorf("event %q filtered out", a)
		}
	}
	if f.ExactMatch("event", "exec_start") {
		t.Errorf("exec events pass the filter")
	}
	_ = network.ListOptions{}
}

func sorted(s []string) []string { slices.Sort(s); return s }
