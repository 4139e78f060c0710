package topology

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// dotClusters maps each node id declared inside a cluster of the DOT text
// to that cluster's label.
func dotClusters(t *testing.T, dot string) map[string]string {
	t.Helper()
	out := map[string]string{}
	label := regexp.MustCompile(`label="([^"]*)"`)
	node := regexp.MustCompile(`^\s+"([^"]+)" \[id=`)
	current := ""
	for _, line := range strings.Split(dot, "\n") {
		switch {
		case strings.HasPrefix(line, "  subgraph cluster_"):
			current = "?"
		case current == "?":
			m := label.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("cluster without label: %s", line)
			}
			current = m[1]
		case line == "  }":
			current = ""
		case current != "":
			if m := node.FindStringSubmatch(line); m != nil {
				out[m[1]] = current
			}
		}
	}
	return out
}

func TestDOTPutsContainersInTheBoxOfTheirNamespace(t *testing.T) {
	snap, view := fixture()
	g := Build(snap, Views{Docker: view})
	var dot bytes.Buffer
	if err := g.WriteDOT(&dot); err != nil {
		t.Fatal(err)
	}
	in := dotClusters(t, dot.String())
	// web owns docker:abc; sidecar shares it (--network container:web).
	for _, id := range []string{"container:c1c1c1c1c1c1", "container:c2c2c2c2c2c2", "netns:docker:abc", "if:docker:abc/eth0"} {
		if got := in[id]; got != "container sidecar + web" && got != "container web + sidecar" {
			t.Errorf("%s drawn in %q, want the box of container web and sidecar", id, got)
		}
	}
	if got := in["if:named:blue/eth0"]; got != "netns named:blue" {
		t.Errorf("blue's eth0 in %q, want its namespace's box", got)
	}
	for _, id := range []string{"if:host/docker0", "if:host/vethc1", "container:c3c3c3c3c3c3", "dockernet:n1bridge0000"} {
		if got, boxed := in[id]; boxed {
			t.Errorf("%s (host namespace or no namespace) drawn inside %q", id, got)
		}
	}
	// The container's end of its veth comes first, so dot ranks it left of the host end.
	if !strings.Contains(dot.String(), `"if:docker:abc/eth0" -> "if:host/vethc1" [id="veth:if:docker:abc/eth0--if:host/vethc1"`) {
		t.Errorf("container veth not drawn from the container side:\n%s", dot.String())
	}
	// Two host veth ends joining bridges sit side by side: a short straight line.
	if !strings.Contains(dot.String(), `{ rank=same; "if:host/veth0"; "if:host/veth1"; }`) {
		t.Errorf("host veth pair not on one rank:\n%s", dot.String())
	}
}

func TestDOTBoxesVMsWithTheirTapsAndPutsTunnelsAtTheEdge(t *testing.T) {
	snap, lv := libvirtFixture()
	osnap, ov := ovsFixture()
	snap.Links = append(snap.Links, osnap.Links...)
	g := Build(snap, Views{Libvirt: lv, OVS: ov.OVS})
	var dot bytes.Buffer
	if err := g.WriteDOT(&dot); err != nil {
		t.Fatal(err)
	}
	in := dotClusters(t, dot.String())
	vms := 0
	for _, e := range g.Edges {
		if e.Kind != EdgeVMNIC {
			continue
		}
		vms++
		want := "vm " + nodeTitle(g, e.Source)
		if in[e.Source] != want || in[e.Target] != want {
			t.Errorf("vm %s in %q, its NIC %s in %q; want both in %q", e.Source, in[e.Source], e.Target, in[e.Target], want)
		}
	}
	if vms == 0 {
		t.Fatal("fixture has no VM NIC")
	}
	sink := regexp.MustCompile(`\{ rank=sink;([^}]*)\}`).FindStringSubmatch(dot.String())
	if sink == nil || !strings.Contains(sink[1], `"tunnel:192.0.2.7"`) {
		t.Errorf("tunnel endpoint not on the right edge: %v\n%s", sink, dot.String())
	}
}

func TestDOTStylesUnknownKindsAsPlainBoxes(t *testing.T) {
	g := &Graph{Nodes: []Node{{ID: "pp:tcp/8080", Kind: "some_future_kind", Title: `a "quoted" <b>`, Subtitle: "x & y"}}}
	var dot bytes.Buffer
	if err := g.WriteDOT(&dot); err != nil {
		t.Fatal(err)
	}
	want := `"pp:tcp/8080" [id="pp:tcp/8080", class="some_future_kind", label=<<b>a &quot;quoted&quot; &lt;b&gt;</b><br/><font point-size="8" color="#475569">x &amp; y</font>>];`
	if !strings.Contains(dot.String(), want) {
		t.Errorf("dot lacks %s:\n%s", want, dot.String())
	}
}

func nodeTitle(g *Graph, id string) string {
	for _, n := range g.Nodes {
		if n.ID == id {
			return n.Title
		}
	}
	return ""
}
