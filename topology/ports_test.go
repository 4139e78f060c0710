package topology

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/dockerview"
)

// A published port is the north-south path the lab notes draw by hand:
// host → 0.0.0.0:80/tcp → the container it is DNAT'd to, in the graph,
// the text tree and DOT.
func TestPublishedPortLinksHostToContainer(t *testing.T) {
	snap, view := fixture()
	view.Containers[0].Ports = []dockerview.Port{
		{HostIP: "0.0.0.0", HostPort: 80, ContainerPort: 8080, Proto: "tcp"},
		{HostIP: "::", HostPort: 80, ContainerPort: 8080, Proto: "tcp"},
	}
	g := Build(snap, Views{Docker: view})
	for _, id := range []string{"port:0.0.0.0:80/tcp", "port:[::]:80/tcp"} {
		if !hasEdge(g, EdgePublish, "netns:host", id) || !hasEdge(g, EdgeDNAT, id, "container:c1c1c1c1c1c1") {
			t.Errorf("%s not linked host → port → container: %+v", id, g.Edges)
		}
	}
	var text, dot bytes.Buffer
	if err := g.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if want := "published port 0.0.0.0:80/tcp: host → container web [DNAT to web:8080/tcp]"; !strings.Contains(text.String(), want) {
		t.Errorf("text lacks %q:\n%s", want, text.String())
	}
	if err := g.WriteDOT(&dot); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"port:0.0.0.0:80/tcp" [`, `class="published_port"`,
		`[id="publish:netns:host--port:0.0.0.0:80/tcp"`, `[id="dnat:port:0.0.0.0:80/tcp--container:c1c1c1c1c1c1"`} {
		if !strings.Contains(dot.String(), want) {
			t.Errorf("dot lacks %s:\n%s", want, dot.String())
		}
	}
}
