package dockerview

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// fake is an in-memory Docker engine implementing dockerAPI.
type fake struct {
	mu     sync.Mutex
	nets   map[string]network.Inspect
	ctrs   map[string]container.InspectResponse
	down   error // every call fails with it while non-nil
	hang   bool  // every call blocks until its context ends
	subs   []*fakeSub
	calls  map[string]int
	closed bool
}

type fakeSub struct {
	msgs chan events.Message
	errs chan error
}

var _ dockerAPI = (*fake)(nil)

func newFake() *fake {
	return &fake{
		nets:  map[string]network.Inspect{},
		ctrs:  map[string]container.InspectResponse{},
		calls: map[string]int{},
	}
}

// gate counts the call and applies the down/hang modes.
func (f *fake) gate(ctx context.Context, name string) error {
	f.mu.Lock()
	f.calls[name]++
	down, hang := f.down, f.hang
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return down
}

func (f *fake) Ping(ctx context.Context) (types.Ping, error) {
	if err := f.gate(ctx, "Ping"); err != nil {
		return types.Ping{}, err
	}
	return types.Ping{APIVersion: "1.41", OSType: "linux"}, nil
}

func (f *fake) NetworkList(ctx context.Context, _ network.ListOptions) ([]network.Summary, error) {
	if err := f.gate(ctx, "NetworkList"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Collect(maps.Values(f.nets)), nil
}

func (f *fake) ContainerList(ctx context.Context, _ container.ListOptions) ([]container.Summary, error) {
	if err := f.gate(ctx, "ContainerList"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []container.Summary
	for id, c := range f.ctrs {
		out = append(out, container.Summary{ID: id, Names: []string{c.Name}})
	}
	return out, nil
}

func (f *fake) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	if err := f.gate(ctx, "ContainerInspect"); err != nil {
		return container.InspectResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ctrs[id]
	if !ok {
		return c, fmt.Errorf("Error: No such container: %s: %w", id, cerrdefs.ErrNotFound)
	}
	return c, nil
}

func (f *fake) Events(ctx context.Context, _ events.ListOptions) (<-chan events.Message, <-chan error) {
	s := &fakeSub{msgs: make(chan events.Message), errs: make(chan error, 1)}
	if err := f.gate(ctx, "Events"); err != nil {
		s.errs <- err
		return s.msgs, s.errs
	}
	f.mu.Lock()
	f.subs = append(f.subs, s)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		select {
		case s.errs <- ctx.Err():
		default:
		}
	}()
	return s.msgs, s.errs
}

func (f *fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fake) callCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fake) setNet(n network.Inspect) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nets[n.ID] = n
}

func (f *fake) delNet(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nets, id)
}

func (f *fake) setCtr(c container.InspectResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctrs[c.ID] = c
}

func (f *fake) delCtr(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ctrs, id)
}

func (f *fake) setHang(h bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hang = h
}

// emit delivers an event on the newest subscription.
func (f *fake) emit(t *testing.T, typ events.Type, action events.Action, id string, attrs map[string]string) {
	t.Helper()
	f.mu.Lock()
	var s *fakeSub
	if len(f.subs) > 0 {
		s = f.subs[len(f.subs)-1]
	}
	f.mu.Unlock()
	if s == nil {
		t.Fatal("emit: no event subscriber")
	}
	m := events.Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs}}
	select {
	case s.msgs <- m:
	case <-time.After(5 * time.Second):
		t.Fatalf("emit %s %s: watcher does not read events", typ, action)
	}
}

// kill makes the engine go away: every open stream ends, every call fails
// like a dial to a missing socket.
func (f *fake) kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	f.dropStreams()
}

// dropStreams ends every open event stream with io.EOF. f.mu must be held.
func (f *fake) dropStreams() {
	for _, s := range f.subs {
		select {
		case s.errs <- io.EOF:
		default:
		}
	}
	f.subs = nil
}

func (f *fake) revive() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = nil
}

// id64 returns a 64 hex digit id derived from seed.
func id64(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:])
}

func mkNet(name, driver, subnet, gw string, opts map[string]string) network.Inspect {
	n := network.Inspect{ID: id64(name), Name: name, Driver: driver, Scope: "local", Options: opts}
	if subnet != "" {
		n.IPAM.Config = []network.IPAMConfig{{Subnet: subnet, Gateway: gw}}
	}
	return n
}

// mkCtr builds an inspect answer; eps maps network name to
// "ip/prefix,mac,gateway"; running selects State.
func mkCtr(name string, running bool, mode string, eps map[string]string, ports nat.PortMap) container.InspectResponse {
	id := id64(name)
	st := &container.State{Status: container.StateExited}
	ns := &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}}
	if running {
		st = &container.State{Status: container.StateRunning, Running: true, Pid: 4242}
		ns.SandboxKey = "/var/run/docker/netns/" + id[:12]
		ns.Ports = ports
	}
	for netName, spec := range eps {
		es := &network.EndpointSettings{NetworkID: id64(netName)}
		if running {
			var ip, mac, gw string
			var plen int
			parts := strings.Split(spec, ",")
			fmt.Sscanf(strings.Replace(parts[0], "/", " ", 1), "%s %d", &ip, &plen)
			mac, gw = parts[1], parts[2]
			es.EndpointID = id64("ep-" + name + "/" + netName)
			es.IPAddress, es.IPPrefixLen, es.MacAddress, es.Gateway = ip, plen, mac, gw
		}
		ns.Networks[netName] = es
	}
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: id, Name: "/" + name, Image: "sha256:" + id64("img"), State: st,
			HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(mode)},
		},
		Config:          &container.Config{Image: "nta-test/app:1", Labels: map[string]string{"app": name}},
		NetworkSettings: ns,
	}
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) count(substr string) int { return strings.Count(b.String(), substr) }

// startWatcher runs a watcher on f until the test ends.
func startWatcher(t *testing.T, f *fake, o Options) (*Watcher, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	if o.Resync == 0 {
		o.Resync = time.Hour
	}
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	w := newWatcher(f, "unix://"+t.TempDir()+"/docker.sock", o)
	w.minBackoff, w.maxBackoff = 5*time.Millisecond, 40*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
		w.Close()
		if t.Failed() {
			t.Logf("watcher log:\n%s", logs)
		}
	})
	return w, logs
}

// waitView polls View until ok accepts it.
func waitView(t *testing.T, w *Watcher, what string, ok func(View) bool) View {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := w.View()
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last view %+v, err %v", what, v, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitErr polls View until it fails.
func waitErr(t *testing.T, w *Watcher) error {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := w.View(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for View to fail")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
