// Package topoweb is nta's own picture of the host: the topology laid out
// as SVG by Graphviz's dot (compiled to WebAssembly and run in pure Go by
// wazero, through github.com/goccy/go-graphviz), and a live page served by
// the exporter that polls a JSON of the graph with traffic rates on its
// edges. Everything the page needs is embedded in the binary.
package topoweb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"slices"
	"sync"

	"github.com/goccy/go-graphviz"

	// Initialized before go-graphviz: its compilation cache in a directory
	// of this user, not the shared /tmp (see the package, and init below).
	"github.com/tangfeixiong/nta/internal/wasmcache"

	"github.com/tangfeixiong/nta/topology"
)

// go-graphviz has compiled its module (its init ran before this package's):
// the process gets its own TMPDIR back.
func init() { wasmcache.Restore() }

// gvMu serialises every call into Graphviz: go-graphviz runs one
// WebAssembly instance per process (its package state), whose memory and
// allocator are not safe for concurrent use, whatever Renderer calls it.
var gvMu sync.Mutex

// Renderer turns graphs into SVG and keeps the last drawing, so that a
// page polling an unchanged topology costs one DOT write and a hash, not a
// layout. A Renderer is safe for concurrent use.
type Renderer struct {
	mu      sync.Mutex
	gv      *graphviz.Graphviz
	lastKey string
	lastSVG []byte
}

// NewRenderer starts a Graphviz context. Close it when done.
func NewRenderer(ctx context.Context) (*Renderer, error) {
	gvMu.Lock()
	defer gvMu.Unlock()
	gv, err := graphviz.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("start graphviz (WebAssembly): %w", err)
	}
	return &Renderer{gv: gv}, nil
}

// Close releases the Graphviz context.
func (r *Renderer) Close() error {
	gvMu.Lock()
	defer gvMu.Unlock()
	return r.gv.Close()
}

// DOT returns g's DOT text and its layout key: a digest of the text, which
// changes exactly when the drawing would.
func DOT(g *topology.Graph) ([]byte, string, error) {
	var dot bytes.Buffer
	if err := g.WriteDOT(&dot); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(dot.Bytes())
	return dot.Bytes(), hex.EncodeToString(sum[:8]), nil
}

// SVG lays g out and returns the SVG and its layout key (see [DOT]). Every
// node and edge group carries its graph id as data-id (and its kind in
// class), so a page or a test can find it; a node drawn with others merged
// into it ([topology.Graph.Merged]: an OVS port and its interface) lists
// all of their ids, its own first, in data-ids (a JSON array).
func (r *Renderer) SVG(ctx context.Context, g *topology.Graph) ([]byte, string, error) {
	dot, key, err := DOT(g)
	if err != nil {
		return nil, "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if key == r.lastKey {
		return r.lastSVG, key, nil
	}
	svg, err := r.render(ctx, dot, g.Merged())
	if err != nil {
		return nil, "", err
	}
	r.lastKey, r.lastSVG = key, svg
	return svg, key, nil
}

func (r *Renderer) render(ctx context.Context, dot []byte, merged topology.Merged) ([]byte, error) {
	gvMu.Lock()
	defer gvMu.Unlock()
	graph, err := graphviz.ParseBytes(dot)
	if err != nil {
		return nil, fmt.Errorf("graphviz cannot parse the DOT nta wrote (a bug: report it with `nta-exporter topology --format dot`): %w", err)
	}
	defer graph.Close()
	var out bytes.Buffer
	if err := r.gv.Render(ctx, graph, graphviz.SVG, &out); err != nil {
		return nil, fmt.Errorf("graphviz layout: %w", err)
	}
	return tagIDs(out.Bytes(), merged), nil
}

// groupID matches the opening tag graphviz writes for a node or an edge
// with an id attribute.
var groupID = regexp.MustCompile(`<g id="([^"]*)" class="(node|edge)`)

// tagIDs copies each node's and edge's id into data-id, and writes data-ids
// on the nodes others are merged into.
func tagIDs(svg []byte, merged topology.Merged) []byte {
	with := map[string][]string{} // drawn node's id → the others' ids
	for id, into := range merged.Nodes {
		with[into] = append(with[into], id)
	}
	return groupID.ReplaceAllFunc(svg, func(m []byte) []byte {
		sub := groupID.FindSubmatch(m)
		id, class := sub[1], sub[2]
		out := make([]byte, 0, len(m)*2+16)
		out = append(out, `<g id="`...)
		out = append(out, id...)
		out = append(out, `" data-id="`...)
		out = append(out, id...)
		// Graphviz escapes more than XML needs (- as &#45;): compare unescaped.
		if raw := html.UnescapeString(string(id)); len(with[raw]) > 0 && string(class) == "node" {
			ids := append([]string{raw}, with[raw]...)
			slices.Sort(ids[1:])
			list, _ := json.Marshal(ids) // ids may hold spaces: a JSON array
			out = append(out, `" data-ids="`...)
			out = append(out, html.EscapeString(string(list))...)
		}
		out = append(out, `" class="`...)
		return append(out, class...)
	})
}
