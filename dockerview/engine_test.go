package dockerview

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
)

// fakeEngine serves a minimal Docker Engine API 1.41 on a unix socket, so
// the real client (version negotiation, event stream decoding, connection
// errors) runs against an engine the test can stop and restart.
type fakeEngine struct {
	t      *testing.T
	sock   string
	mu     sync.Mutex
	srv    *http.Server
	ctrs   map[string]container.InspectResponse
	events chan events.Message
}

func newFakeEngine(t *testing.T) *fakeEngine {
	e := &fakeEngine{t: t, sock: filepath.Join(t.TempDir(), "docker.sock"),
		ctrs: map[string]container.InspectResponse{}, events: make(chan events.Message)}
	t.Cleanup(e.stop)
	return e
}

func (e *fakeEngine) start() {
	ln, err := net.Listen("unix", e.sock)
	if err != nil {
		e.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(e.serve)}
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	go srv.Serve(ln)
}

// stop closes the listener (removing the socket) and every connection,
// like a dockerd that exits.
func (e *fakeEngine) stop() {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (e *fakeEngine) setCtr(c container.InspectResponse) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ctrs[c.ID] = c
}

func (e *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Content-Type", "application/json")
	p := r.URL.Path
	if p == "/_ping" {
		w.Write([]byte("OK"))
		return
	}
	if !strings.HasPrefix(p, "/v1.41/") {
		http.Error(w, `{"message":"client did not negotiate API 1.41: `+p+`"}`, http.StatusBadRequest)
		return
	}
	p = strings.TrimPrefix(p, "/v1.41")
	e.mu.Lock()
	ctrs := make([]container.InspectResponse, 0, len(e.ctrs))
	for _, c := range e.ctrs {
		ctrs = append(ctrs, c)
	}
	e.mu.Unlock()
	switch {
	case p == "/networks":
		json.NewEncoder(w).Encode([]network.Summary{mkNet("bridge", "bridge", "172.17.0.0/16", "172.17.0.1", nil)})
	case p == "/containers/json":
		var list []container.Summary
		for _, c := range ctrs {
			list = append(list, container.Summary{ID: c.ID})
		}
		json.NewEncoder(w).Encode(list)
	case strings.HasPrefix(p, "/containers/") && strings.HasSuffix(p, "/json"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/containers/"), "/json")
		for _, c := range ctrs {
			if c.ID == id {
				json.NewEncoder(w).Encode(c)
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"No such container: ` + id + `"}`))
	case p == "/events":
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		enc := json.NewEncoder(w)
		for {
			select {
			case <-r.Context().Done():
				return
			case m := <-e.events:
				enc.Encode(m)
				w.(http.Flusher).Flush()
			}
		}
	default:
		http.NotFound(w, r)
	}
}

// TestRealClientEngineRestart runs the real client against fakeEngine:
// sync, an event, the engine exiting (one log line, View fails saying the
// socket is gone) and coming back (recovery, one log line).
func TestRealClientEngineRestart(t *testing.T) {
	e := newFakeEngine(t)
	e.setCtr(mkCtr("web", true, "default", map[string]string{"bridge": "172.17.0.2/16,02:42:ac:11:00:02,172.17.0.1"}, nil))
	e.start()

	logs := &logBuffer{}
	w, err := New(Options{Host: "unix://" + e.sock, Timeout: time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w.minBackoff, w.maxBackoff = 5*time.Millisecond, 20*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	defer w.Close()
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	}()

	waitView(t, w, "sync", func(v View) bool { c, _ := v.Container("web"); return len(c.Endpoints) == 1 })
	if !strings.Contains(logs.String(), "api_version=1.41") {
		t.Errorf("API version not negotiated/logged:\n%s", logs)
	}

	db := mkCtr("db", true, "bridge", nil, nil)
	e.setCtr(db)
	select {
	case e.events <- events.Message{Type: events.ContainerEventType, Action: events.ActionStart, Actor: events.Actor{ID: db.ID}}:
	case <-time.After(5 * time.Second):
		t.Fatal("no event subscriber")
	}
	waitView(t, w, "event", func(v View) bool { _, ok := v.Container("db"); return ok })

	e.stop()
	waitErr(t, w)
	time.Sleep(100 * time.Millisecond) // several retries
	_, err = w.View()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "docker socket "+e.sock+" not found — is dockerd running?") {
		t.Errorf("View error while engine is gone: %v", err)
	}
	if n := logs.count("docker engine unavailable"); n != 1 {
		t.Errorf("%d unavailable log lines, want 1:\n%s", n, logs)
	}

	e.start()
	waitView(t, w, "recovery", func(v View) bool { return len(v.Containers) == 2 })
	if n := logs.count("docker engine available"); n != 2 {
		t.Errorf("%d available log lines, want 2:\n%s", n, logs)
	}
}
