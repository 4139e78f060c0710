package topoweb

import (
	"context"
	"encoding/json"
	"html"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/internal/wasmcache"
	"github.com/tangfeixiong/nta/topology"
)

// box is a rectangle in SVG coordinates.
type box struct{ x0, y0, x1, y1 float64 }

func (b box) contains(x, y float64) bool { return x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1 }

// drawing is what a reader of the SVG sees: where each node's label is,
// which boxes (clusters) there are, which ids carry data-id.
type drawing struct {
	nodes    map[string][2]float64 // data-id → label position
	clusters map[string]box        // cluster id → bounds
	dataIDs  map[string]bool       // every data-id (nodes and edges)
}

var (
	group   = regexp.MustCompile(`(?s)<g id="([^"]*)"(?: data-id="([^"]*)")?(?: data-ids="([^"]*)")? class="([^"]*)">(.*?)</g>`)
	textPos = regexp.MustCompile(`<text[^>]* x="(-?[\d.]+)" y="(-?[\d.]+)"`)
	number  = regexp.MustCompile(`-?\d+(?:\.\d+)?`)
)

func parseDrawing(t *testing.T, svg string) drawing {
	t.Helper()
	d := drawing{nodes: map[string][2]float64{}, clusters: map[string]box{}, dataIDs: map[string]bool{}}
	for _, m := range group.FindAllStringSubmatch(svg, -1) {
		id, dataID, class, body := html.UnescapeString(m[1]), html.UnescapeString(m[2]), m[4], m[5]
		ids := []string{dataID}
		if m[3] != "" {
			if err := json.Unmarshal([]byte(html.UnescapeString(m[3])), &ids); err != nil || len(ids) < 2 {
				t.Fatalf("node %s: data-ids %q is not a JSON array of its ids: %v", id, m[3], err)
			}
			if ids[0] != dataID {
				t.Errorf("node %s: data-ids %q does not start with its data-id", id, m[3])
			}
		}
		if dataID != "" {
			for _, id := range ids {
				d.dataIDs[id] = true
			}
		}
		switch strings.Fields(class)[0] {
		case "node":
			p := textPos.FindStringSubmatch(body)
			if p == nil {
				t.Fatalf("node %s has no label", id)
			}
			x, _ := strconv.ParseFloat(p[1], 64)
			y, _ := strconv.ParseFloat(p[2], 64)
			for _, id := range ids {
				d.nodes[id] = [2]float64{x, y}
			}
		case "cluster":
			path := regexp.MustCompile(`(?: d| points)="([^"]*)"`).FindStringSubmatch(body)
			if path == nil {
				t.Fatalf("cluster %s has no outline", id)
			}
			nums := number.FindAllString(path[1], -1)
			b := box{1e9, 1e9, -1e9, -1e9}
			for i := 0; i+1 < len(nums); i += 2 {
				x, _ := strconv.ParseFloat(nums[i], 64)
				y, _ := strconv.ParseFloat(nums[i+1], 64)
				b.x0, b.x1 = min(b.x0, x), max(b.x1, x)
				b.y0, b.y1 = min(b.y0, y), max(b.y1, y)
			}
			d.clusters[id] = b
		}
	}
	return d
}

func TestSVGReadsLikeTheLabNotes(t *testing.T) {
	snap, views := synthHost(6, 2, 3, 1)
	g := topology.Build(snap, views)
	r, err := NewRenderer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	svg, key, err := r.SVG(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	d := parseDrawing(t, string(svg))
	for _, n := range g.Nodes {
		if _, ok := d.nodes[n.ID]; !ok {
			t.Errorf("node %s (%s) not drawn with data-id", n.ID, n.Kind)
		}
	}
	merged := g.Merged()
	for _, e := range g.Edges {
		if !d.dataIDs[e.ID] && !topology.HiddenEdgeKinds[e.Kind] && !merged.Edges[e.ID] {
			t.Errorf("edge %s not drawn with data-id", e.ID)
		}
	}
	// An OVS port and its same-named interface are one box; a bond is not.
	for _, br := range views.OVS.Bridges {
		for _, p := range br.Ports {
			port := topology.OVSPortID(br.Name, p.Name)
			into := merged.Nodes[port]
			if single := len(p.Interfaces) == 1 && p.Interfaces[0].Name == p.Name; single != (into != "") {
				t.Errorf("port %s (%d interfaces) merged into %q", port, len(p.Interfaces), into)
			}
			if into != "" && d.nodes[port] != d.nodes[into] {
				t.Errorf("port %s drawn at %v, apart from its interface %s at %v", port, d.nodes[port], into, d.nodes[into])
			}
		}
	}
	if len(merged.Nodes) == 0 {
		t.Error("no OVS port merged with its interface")
	}
	x := func(id string) float64 { return d.nodes[id][0] }
	bridges := []string{"if:host/docker0", "if:host/br-lnmp0001", "if:host/virbr0", "ovsbr:br-int"}
	for i := range 6 {
		ns := "docker:sb000" + strconv.Itoa(i)
		b, ok := d.clusters["cluster:"+topology.NetnsID(ns)]
		if !ok {
			t.Fatalf("no box for %s: %v", ns, d.clusters)
		}
		ctr := topology.ContainerID(views.Docker.Containers[i].ID)
		for _, id := range []string{ctr, topology.InterfaceID(ns, "eth0"), topology.NetnsID(ns)} {
			if p := d.nodes[id]; !b.contains(p[0], p[1]) {
				t.Errorf("%s at %v outside its container's box %v", id, p, b)
			}
		}
		for _, br := range bridges {
			if x(topology.InterfaceID(ns, "eth0")) >= x(br) {
				t.Errorf("container interface %s not left of bridge %s", ns, br)
			}
		}
	}
	vm := d.clusters["cluster:"+topology.VMID(views.Libvirt.Domains[0].UUID)]
	if p := d.nodes["if:host/vnet0"]; !vm.contains(p[0], p[1]) {
		t.Errorf("tap vnet0 at %v outside its VM's box %v", p, vm)
	}
	for _, edge := range []string{"if:host/eth0", "tunnel:192.0.2.99"} {
		for _, br := range bridges {
			if x(edge) <= x(br) {
				t.Errorf("%s (x %.0f) not right of bridge %s (x %.0f)", edge, x(edge), br, x(br))
			}
		}
	}
	if x("if:host/nt-v0") != x("if:host/nt-v1") {
		t.Errorf("the veth joining nt-br0 and nt-br1 is not a short straight line: ends at x %.0f and %.0f", x("if:host/nt-v0"), x("if:host/nt-v1"))
	}
	again, key2, err := r.SVG(context.Background(), topology.Build(snap, views))
	if err != nil || key2 != key || &again[0] != &svg[0] {
		t.Errorf("unchanged graph laid out again (key %s→%s, err %v)", key, key2, err)
	}
}

// go-graphviz's init compiled its module with the cache in wasmcache's
// directory: wasmcache's init ran first, as the package says.
func TestGraphvizCacheInUserDirectory(t *testing.T) {
	if wasmcache.Dir == "" {
		t.Skip("no writable cache directory: go-graphviz compiled without a cache")
	}
	if _, err := os.Stat(wasmcache.Dir + "/go-graphviz"); err != nil && !wasmcache.Scratch() {
		t.Errorf("go-graphviz's cache is not under %s (%v): its init ran before wasmcache's", wasmcache.Dir, err)
	}
	if d := os.TempDir(); d == wasmcache.Dir {
		t.Errorf("TMPDIR is still %s after the inits", d)
	}
}

// tagIDs lists a merged box's ids as a JSON array, so ids with spaces (a
// named netns may have them) and markup survive; other groups keep data-id.
func TestTagIDsWritesEveryIDOfAMergedBox(t *testing.T) {
	svg := `<g id="if:named:a b/v&amp;0" class="node veth ovs_port"><title>x</title></g>` +
		`<g id="edge:1" class="edge ovs_port"><title>y</title></g>`
	merged := topology.Merged{Nodes: map[string]string{"ovsport:br 0/v&0": "if:named:a b/v&0"}}
	out := string(tagIDs([]byte(svg), merged))
	m := regexp.MustCompile(`data-ids="([^"]*)"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no data-ids in %s", out)
	}
	var ids []string
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &ids); err != nil {
		t.Fatal(err)
	}
	if want := []string{"if:named:a b/v&0", "ovsport:br 0/v&0"}; strings.Join(ids, "|") != strings.Join(want, "|") {
		t.Errorf("data-ids %q, want %q", ids, want)
	}
	if strings.Count(out, "data-ids") != 1 || !strings.Contains(out, `<g id="edge:1" data-id="edge:1" class="edge`) {
		t.Errorf("edge not tagged alone: %s", out)
	}
}
