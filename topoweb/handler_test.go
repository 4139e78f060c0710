package topoweb

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/topology"
)

// clockHost hands out the readings it is given, one per call, each with its
// time, like a HostCache whose scans are that far apart.
// The daemons' views go with the readings: views[i] is current from the
// i-th snapshot on.
type clockHost struct {
	mu    sync.Mutex
	snaps []*hostnet.Snapshot
	times []time.Time
	views []topology.Views
	next  int
}

func (c *clockHost) source() Source {
	return Source{
		Snapshot: func(context.Context) (*hostnet.Snapshot, time.Time, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			i := min(c.next, len(c.snaps)-1)
			c.next++
			return c.snaps[i], c.times[i], nil
		},
		Views: func() topology.Views {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.views[min(c.next-1, len(c.views)-1)]
		},
	}
}

func newTestServer(t *testing.T, src Source) *httptest.Server {
	t.Helper()
	r, err := NewRenderer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	mux := http.NewServeMux()
	NewHandler(src, r, Options{Window: 5 * time.Second}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func getData(t *testing.T, url string) Data {
	t.Helper()
	resp, err := http.Get(url + DataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", DataPath, resp.StatusCode, b)
	}
	var d Data
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDataRatesAreCounterDeltasOverTheWindow(t *testing.T) {
	// Two scans 4 s apart: every counter of the second is twice the first
	// (synthHost scales them), so each rate is the first reading's value / 4 s.
	s1, views := synthHost(2, 1, 2, 1)
	s2, views2 := synthHost(2, 1, 2, 2)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	host := &clockHost{snaps: []*hostnet.Snapshot{s1, s2}, times: []time.Time{t0, t0.Add(4 * time.Second)}, views: []topology.Views{views, views2}}
	srv := newTestServer(t, host.source())

	first := getData(t, srv.URL)
	for _, e := range first.Edges {
		if e.Traffic != nil {
			t.Fatalf("edge %s has traffic after one reading: %+v", e.ID, e.Traffic)
		}
	}
	d := getData(t, srv.URL)
	if d.WindowSeconds != 4 || d.Layout != first.Layout || d.Layout == "" {
		t.Fatalf("window %v s, layout %q then %q", d.WindowSeconds, first.Layout, d.Layout)
	}
	edges := map[string]EdgeData{}
	for _, e := range d.Edges {
		edges[e.ID] = e
	}
	nodes := map[string]NodeData{}
	for _, n := range d.Nodes {
		nodes[n.ID] = n
	}
	stats := map[string]hostnet.Stats{}
	for _, l := range s1.Links {
		stats[topology.InterfaceID(l.Netns, l.Name)] = l.Stats
	}
	want := func(id string) (rx, tx float64) {
		s := stats[id]
		return float64(s.RxBytes) / 4, float64(s.TxBytes) / 4
	}
	for _, c := range []struct {
		edge, via string
	}{
		{"member:if:host/veth0000--if:host/docker0", "if:host/veth0000"},                   // bridge port: the port
		{"veth:if:docker:sb0000/eth0--if:host/veth0000", "if:docker:sb0000/eth0"},          // veth pair: its first end
		{"vm_nic:vm:00000000-0000-4000-8000-000000000000--if:host/vnet0", "if:host/vnet0"}, // VM NIC: the tap
		{"ovs_interface:ovsport:br-int/ovsv1--if:host/ovsv1", "if:host/ovsv1"},             // OVS port's interface
		{"ovs_port:ovsbr:br-int--ovsport:br-int/ovsv1", "ovsport:br-int/ovsv1"},            // OVS port: sum of its interfaces
		{"veth_link:if:host/nt-br0--if:host/nt-br1", "if:host/nt-v0"},                      // two bridges: the veth joining them
		{"ovs_tunnel:ovsif:vx0--tunnel:192.0.2.99", "ovsif:vx0"},                           // tunnel: OVS statistics
	} {
		e, ok := edges[c.edge]
		if !ok {
			t.Errorf("no edge %s", c.edge)
			continue
		}
		if e.Traffic == nil || e.Traffic.Via != c.via {
			t.Errorf("edge %s: traffic %+v, want measured on %s", c.edge, e.Traffic, c.via)
			continue
		}
		rx, tx := want(c.via)
		if c.via == "ovsport:br-int/ovsv1" {
			rx, tx = want("if:host/ovsv1")
		}
		if c.via == "ovsif:vx0" {
			rx, tx = 7000.0/4, 8000.0/4
		}
		if e.Traffic.RxBytesPerSecond != rx || e.Traffic.TxBytesPerSecond != tx || e.Traffic.BytesPerSecond != rx+tx {
			t.Errorf("edge %s: rx %v tx %v total %v B/s, want %v %v %v", c.edge, e.Traffic.RxBytesPerSecond, e.Traffic.TxBytesPerSecond, e.Traffic.BytesPerSecond, rx, tx, rx+tx)
		}
	}
	// Relations carry no traffic of their own.
	for _, e := range d.Edges {
		if (e.Kind == topology.EdgeEndpoint || e.Kind == topology.EdgeBacks || e.Kind == topology.EdgeNetns) && e.Traffic != nil {
			t.Errorf("relation %s has traffic %+v", e.ID, e.Traffic)
		}
	}
	// A VM's traffic is the guest's: what its tap sent, it received.
	vm := nodes["vm:00000000-0000-4000-8000-000000000000"].Traffic
	rx, tx := want("if:host/vnet0")
	if vm == nil || vm.RxBytesPerSecond != tx || vm.TxBytesPerSecond != rx {
		t.Errorf("vm traffic %+v, want rx %v tx %v (the tap's swapped)", vm, tx, rx)
	}
	// A container's is its namespace's interfaces'.
	ctr := nodes[topology.ContainerID(views.Docker.Containers[1].ID)].Traffic
	rx, tx = want("if:docker:sb0001/eth0")
	if ctr == nil || ctr.RxBytesPerSecond != rx || ctr.TxBytesPerSecond != tx {
		t.Errorf("container traffic %+v, want rx %v tx %v", ctr, rx, tx)
	}
}

func TestDataCounterResetGivesNoRate(t *testing.T) {
	s1, views := synthHost(1, 0, 0, 3)
	s2, views2 := synthHost(1, 0, 0, 1) // every counter went backwards: devices recreated
	t0 := time.Now()
	host := &clockHost{snaps: []*hostnet.Snapshot{s1, s2}, times: []time.Time{t0, t0.Add(2 * time.Second)}, views: []topology.Views{views, views2}}
	srv := newTestServer(t, host.source())
	getData(t, srv.URL)
	for _, e := range getData(t, srv.URL).Edges {
		if e.Traffic != nil {
			t.Errorf("edge %s: rate %+v across a counter reset", e.ID, e.Traffic)
		}
	}
}

func TestHistoryComparesWithAReadingAWindowOld(t *testing.T) {
	h := &history{window: 5 * time.Second}
	t0 := time.Now()
	var snaps []*hostnet.Snapshot
	at := func(sec int) *reading {
		s := &hostnet.Snapshot{}
		snaps = append(snaps, s)
		return &reading{at: t0.Add(time.Duration(sec) * time.Second), snap: s}
	}
	if _, base := h.add(at(0)); base != nil {
		t.Fatal("a base before the second reading")
	}
	for _, c := range []struct{ now, base int }{{2, 0}, {4, 0}, {6, 0}, {8, 2}, {12, 6}, {30, 12}} {
		cur, base := h.add(at(c.now))
		if got := base.at.Sub(t0); got != time.Duration(c.base)*time.Second || cur.at.Sub(t0) != time.Duration(c.now)*time.Second {
			t.Errorf("at %d s: compared with the reading of %v, want %d s", c.now, got, c.base)
		}
	}
	// The same scan again (a cached snapshot): the reading it came with stands.
	again := &reading{at: t0.Add(31 * time.Second), snap: snaps[len(snaps)-1]}
	if cur, _ := h.add(again); cur.at != t0.Add(30*time.Second) {
		t.Errorf("cached snapshot recorded as a new reading at %v", cur.at.Sub(t0))
	}
	if len(h.readings) > 3 {
		t.Errorf("history keeps %d readings, want old ones dropped", len(h.readings))
	}
}

func TestPageIsSelfContained(t *testing.T) {
	snap, views := synthHost(1, 1, 1, 1)
	host := &clockHost{snaps: []*hostnet.Snapshot{snap}, times: []time.Time{time.Now()}, views: []topology.Views{views}}
	srv := newTestServer(t, host.source())
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|import\s`)
	for path, ctype := range map[string]string{PagePath: "text/html", "/topology.js": "text/javascript", "/topology.css": "text/css", SVGPath: "image/svg+xml"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if m := external.Find(body); m != nil {
			t.Errorf("%s loads something from elsewhere: %q", path, m)
		}
		if path == PagePath && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("page without a same-origin CSP: %q", resp.Header.Get("Content-Security-Policy"))
		}
		if path == SVGPath && (resp.Header.Get("X-Nta-Layout") != getData(t, srv.URL).Layout) {
			t.Errorf("svg layout key %q differs from the data's", resp.Header.Get("X-Nta-Layout"))
		}
	}
}

func TestFormatOfRatesIsFinite(t *testing.T) {
	if r := rate(counters{RxBytes: 10}, counters{RxBytes: 20}, 0); r != nil {
		t.Errorf("rate over 0 s: %+v", r)
	}
	r := rate(counters{RxBytes: 10, TxPackets: 1}, counters{RxBytes: 30, TxBytes: 4, TxPackets: 3}, 2)
	if r == nil || r.RxBytesPerSecond != 10 || r.TxBytesPerSecond != 2 || r.PacketsPerSecond != 1 || math.IsNaN(r.BytesPerSecond) {
		t.Errorf("rate %+v", r)
	}
}

// A published port's edges carry NAT'd traffic the host scan does not
// count: they get no rate, not the host namespace's or container's total.
func TestPublishedPortEdgesHaveNoVia(t *testing.T) {
	g := &topology.Graph{
		Nodes: []topology.Node{
			{ID: "netns:host", Kind: topology.KindNetns},
			{ID: "port:0.0.0.0:80/tcp", Kind: topology.KindPublishedPort},
			{ID: "container:c1c1c1c1c1c1", Kind: topology.KindContainer},
			{ID: "if:host/veth1", Kind: "veth"},
		},
		Edges: []topology.Edge{
			{ID: "publish:netns:host--port:0.0.0.0:80/tcp", Source: "netns:host", Target: "port:0.0.0.0:80/tcp", Kind: topology.EdgePublish},
			{ID: "dnat:port:0.0.0.0:80/tcp--container:c1c1c1c1c1c1", Source: "port:0.0.0.0:80/tcp", Target: "container:c1c1c1c1c1c1", Kind: topology.EdgeDNAT},
			{ID: "vm_nic:x--if:host/veth1", Source: "container:c1c1c1c1c1c1", Target: "if:host/veth1", Kind: topology.EdgeVMNIC},
		},
	}
	have := map[string]counters{"netns:host": {RxBytes: 1}, "container:c1c1c1c1c1c1": {RxBytes: 1}, "if:host/veth1": {RxBytes: 1}}
	via := edgeVia(g, have)
	for _, e := range g.Edges[:2] {
		if v, ok := via[e.ID]; ok {
			t.Errorf("edge %s measured on %s", e.ID, v)
		}
	}
	if via["vm_nic:x--if:host/veth1"] != "if:host/veth1" {
		t.Errorf("a wire next to them lost its measure: %v", via)
	}
}
