package topology

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteDOT writes the graph for graphviz's dot, drawn like a lab notebook
// page, left to right from the workloads to the wire:
//
//   - each container and VM is a box (cluster) holding the interfaces of its
//     namespace (a VM: its taps), the container and namespace nodes with
//     them; other namespaces are boxes of their own;
//   - host-side veth ends, bridge ports and OVS ports next, then the
//     bridges (Linux and OVS) in the middle with the Docker or libvirt
//     network they back beside them;
//   - the physical NICs, published ports and tunnel endpoints on the right
//     edge (north-south);
//   - an OVS port and its one interface of the same name (the usual port:
//     `ovs-vsctl add-port br0 vnet0`) as one box, the interface's, with the
//     port's settings in its subtitle (see [Graph.Merged]); a bond or a
//     port named apart from its interface stays a box of its own;
//   - veth pairs and OVS patch links as short straight lines; relations
//     that are not wires thin
//     and dotted (veth_link) or invisible when a box or a note says them
//     already (namespace, sandbox, endpoint, VM network), without pulling
//     the layout.
//
// Every node and edge carries its graph id as the SVG id (id attribute) and
// its kind as class, so a page can find and restyle them. Kinds without a
// style of their own are drawn as plain rounded boxes.
func (g *Graph) WriteDOT(w io.Writer) error {
	ix := g.index()
	l := layoutOf(g, ix)
	// Rich labels (bold title, subtitle) for hosts of a readable size; a
	// host of hundreds of nodes gets plain titles, which Graphviz lays out
	// in about two thirds of the time (BENCHMARKS.md).
	rich := len(g.Nodes) <= RichLabelNodes
	var b strings.Builder
	b.WriteString("digraph nta {\n")
	b.WriteString("  graph [rankdir=LR, nodesep=0.12, ranksep=0.45, fontname=\"Helvetica\", fontsize=11, bgcolor=\"white\", pad=0.2];\n")
	b.WriteString("  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f3f4f6\", color=\"#475569\", fontname=\"Helvetica\", fontsize=10, margin=\"0.08,0.03\", height=0.3];\n")
	b.WriteString("  edge [arrowhead=none, color=\"#64748b\", fontname=\"Helvetica\", fontsize=9];\n")
	node := func(n Node) string {
		if port, ok := l.merged.portOf[n.ID]; ok {
			p := ix.byID[port]
			n.Kind += " " + p.Kind
			if p.Subtitle != "" {
				// The port's part first: a long interface subtitle is cut.
				n.Subtitle = strings.TrimSuffix(p.Subtitle+", "+n.Subtitle, ", ")
			}
		}
		return dotNodeLabelled(n, rich)
	}
	for i, c := range l.clusters {
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    id=%s; class=%s; label=%s; labeljust=l; %s\n", i, q("cluster:"+c.key), q(c.class), q(c.label), c.style)
		for _, id := range c.members {
			b.WriteString("    " + node(ix.byID[id]) + "\n")
		}
		b.WriteString("  }\n")
	}
	for _, n := range g.Nodes {
		if _, in := l.clusterOf[n.ID]; !in && l.merged.Nodes[n.ID] == "" {
			b.WriteString("  " + node(n) + "\n")
		}
	}
	for _, same := range l.sameRank {
		b.WriteString("  { rank=same;")
		for _, id := range same {
			b.WriteString(" " + q(id) + ";")
		}
		b.WriteString(" }\n")
	}
	if len(l.edge) > 0 {
		b.WriteString("  { rank=sink;")
		for _, id := range l.edge {
			b.WriteString(" " + q(id) + ";")
		}
		b.WriteString(" }\n")
	}
	for _, e := range g.Edges {
		if l.merged.Edges[e.ID] {
			continue
		}
		if m := l.merged.Nodes[e.Source]; m != "" {
			e.Source = m
		}
		if m := l.merged.Nodes[e.Target]; m != "" {
			e.Target = m
		}
		b.WriteString("  " + l.dotEdge(e) + "\n")
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// RichLabelNodes is the largest graph drawn with rich labels.
const RichLabelNodes = 300

// KindsAtEdge are the node kinds drawn on the right edge of the picture:
// where traffic enters and leaves the host. published_port is the NAT
// source's kind.
var KindsAtEdge = map[string]bool{"physical": true, KindTunnelEndpoint: true, "published_port": true}

// HiddenEdgeKinds are relations the drawing says already (a box holds a
// namespace's interfaces and its container; the note beside a bridge names
// the network): WriteDOT keeps them invisible, so the SVG has no element
// for them.
var HiddenEdgeKinds = map[string]bool{EdgeNetns: true, EdgeSandbox: true, EdgeEndpoint: true, EdgeVMNetwork: true}

type cluster struct {
	key, label, class, style string
	members                  []string
}

type layout struct {
	merged    Merged
	clusters  []cluster
	clusterOf map[string]int
	sameRank  [][]string
	edge      []string // node ids on the right edge
}

// Merged says which nodes WriteDOT draws inside another node's box: an OVS
// port with exactly one interface of the same name is drawn as that
// interface (the kernel link or OVS interface node), with the port's
// settings in its subtitle. Halving the nodes of a large OVS bridge this way
// also halves its layout time (BENCHMARKS.md).
type Merged struct {
	// Nodes maps each node drawn inside another to the node drawn.
	Nodes map[string]string
	// Edges are the edges inside a merged box (port → interface): not drawn.
	Edges map[string]bool

	portOf map[string]string // drawn node → the port inside it
}

// Merged returns the nodes and edges WriteDOT draws inside another node
// (see [Merged]), so that a drawing can be matched against the graph: the
// SVG group of a drawn node stands for the nodes merged into it too.
func (g *Graph) Merged() Merged { return mergedOf(g, g.index()) }

func mergedOf(g *Graph, ix *index) Merged {
	m := Merged{Nodes: map[string]string{}, Edges: map[string]bool{}, portOf: map[string]string{}}
	for _, n := range g.Nodes {
		if n.Kind != KindOVSPort {
			continue
		}
		var ifaces []Edge
		for _, e := range ix.out[n.ID] {
			if e.Kind == EdgeOVSInterface {
				ifaces = append(ifaces, e)
			}
		}
		if len(ifaces) != 1 || len(ix.out[n.ID]) != 1 || len(ix.in[n.ID]) != 1 {
			continue // a bond, or a port with relations of its own
		}
		i, ok := ix.byID[ifaces[0].Target]
		if !ok || i.Title != n.Title || m.portOf[i.ID] != "" {
			continue
		}
		m.Nodes[n.ID] = i.ID
		m.Edges[ifaces[0].ID] = true
		m.portOf[i.ID] = n.ID
	}
	return m
}

// layoutOf groups the nodes into workload boxes and finds the rank hints.
func layoutOf(g *Graph, ix *index) layout {
	l := layout{merged: mergedOf(g, ix), clusterOf: map[string]int{}}
	add := func(c cluster) {
		if len(c.members) == 0 {
			return
		}
		for _, id := range c.members {
			l.clusterOf[id] = len(l.clusters)
		}
		l.clusters = append(l.clusters, c)
	}
	byNetns := map[string][]string{}
	for _, n := range g.Nodes {
		if n.Netns != "" && n.Netns != "host" {
			byNetns[n.Netns] = append(byNetns[n.Netns], n.ID)
		}
	}
	var nss []string
	for ns := range byNetns {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		c := cluster{key: NetnsID(ns), label: "netns " + ns, class: "netns",
			style: `style="rounded,filled"; fillcolor="#f8fafc"; color="#94a3b8";`}
		var containers []string
		for _, e := range ix.in[NetnsID(ns)] {
			if e.Kind == EdgeSandbox {
				containers = append(containers, e.Source)
			}
		}
		sort.Strings(containers)
		if len(containers) > 0 {
			var names []string
			for _, id := range containers {
				names = append(names, ix.byID[id].Title)
			}
			c.label = "container " + strings.Join(names, " + ")
			c.class = "container"
			c.style = `style="rounded,filled"; fillcolor="#eff6ff"; color="#3b82f6";`
		}
		c.members = append(containers, byNetns[ns]...)
		add(c)
	}
	for _, n := range g.Nodes {
		if n.Kind != KindVM {
			continue
		}
		c := cluster{key: n.ID, label: "vm " + n.Title, class: "vm", members: []string{n.ID},
			style: `style="rounded,filled"; fillcolor="#f5f3ff"; color="#7c3aed";`}
		for _, e := range ix.out[n.ID] {
			if _, taken := l.clusterOf[e.Target]; e.Kind == EdgeVMNIC && !taken {
				c.members = append(c.members, e.Target)
			}
		}
		add(c)
	}
	loose := func(id string) bool { _, in := l.clusterOf[id]; return !in }
	for _, e := range g.Edges {
		switch e.Kind {
		case EdgeVeth, EdgeOVSPatch, EdgeBacks:
			if loose(e.Source) && loose(e.Target) {
				l.sameRank = append(l.sameRank, []string{e.Source, e.Target})
			}
		}
	}
	for _, n := range g.Nodes {
		if KindsAtEdge[n.Kind] && loose(n.ID) {
			l.edge = append(l.edge, n.ID)
		}
	}
	return l
}

// dotEdge writes one edge; wires run from the workload side (tail) towards
// the wire (head) so that dot ranks them left to right.
func (l layout) dotEdge(e Edge) string {
	tail, head := e.Source, e.Target
	attrs := []string{"id=" + q(e.ID), "class=" + q(e.Kind)}
	if HiddenEdgeKinds[e.Kind] {
		return fmt.Sprintf("%s -> %s [%s, constraint=false, style=invis];", q(tail), q(head), strings.Join(attrs, ", "))
	}
	switch e.Kind {
	case EdgeVeth:
		// The end inside a box (container, VM, namespace) comes first.
		if _, in := l.clusterOf[head]; in {
			if _, tin := l.clusterOf[tail]; !tin {
				tail, head = head, tail
			}
		}
		attrs = append(attrs, "penwidth=2", `color="#1e293b"`)
	case EdgeOVSPatch:
		attrs = append(attrs, "penwidth=2", `color="#c2410c"`)
	case EdgeOVSPort, EdgeOVSInterface:
		// bridge → port → interface in the graph; drawn interface → port → bridge.
		tail, head = head, tail
		attrs = append(attrs, `color="#ea580c"`)
	case EdgeBacks:
		attrs = append(attrs, `style=dashed`, `color="#0284c7"`)
	case EdgeOVSTunnel:
		attrs = append(attrs, `style=dashed`, `color="#dc2626"`)
	case EdgeVethLink:
		attrs = append(attrs, "constraint=false", "style=dotted", `color="#94a3b8"`)
	}
	return fmt.Sprintf("%s -> %s [%s];", q(tail), q(head), strings.Join(attrs, ", "))
}

// nodeStyle is the look of a node kind; kinds not listed (new link kinds,
// kinds of sources added later) get the default rounded box.
var nodeStyle = map[string]string{
	"bridge":           `shape=box, style="filled,bold", fillcolor="#fde68a", color="#b45309", penwidth=1.5`,
	KindOVSBridge:      `shape=box, style="filled,bold", fillcolor="#fdba74", color="#c2410c", penwidth=1.5`,
	KindOVSPort:        `fillcolor="#ffedd5", color="#ea580c"`,
	KindOVSInterface:   `fillcolor="#fff7ed", color="#ea580c"`,
	KindOVSInternal:    `fillcolor="#fff7ed", color="#ea580c"`,
	KindOVSDatapath:    `fillcolor="#fff7ed", color="#ea580c", style="rounded,filled,dashed"`,
	"physical":         `shape=box, style="filled,bold", fillcolor="#bbf7d0", color="#15803d", peripheries=2`,
	KindTunnelEndpoint: `shape=ellipse, style=filled, fillcolor="#fecaca", color="#b91c1c"`,
	"published_port":   `shape=cds, style=filled, fillcolor="#fecaca", color="#b91c1c"`,
	KindContainer:      `fillcolor="#bfdbfe", color="#1d4ed8", penwidth=1.5`,
	KindVM:             `shape=component, style=filled, fillcolor="#ddd6fe", color="#6d28d9", penwidth=1.5`,
	KindVMNIC:          `fillcolor="#ede9fe", color="#6d28d9"`,
	KindNetns:          `shape=folder, style=filled, fillcolor="#e2e8f0", color="#64748b"`,
	KindDockerNetwork:  `shape=note, style=filled, fillcolor="#e0f2fe", color="#0369a1"`,
	KindLibvirtNetwork: `shape=note, style=filled, fillcolor="#e0f2fe", color="#0369a1"`,
	"veth":             `fillcolor="#ffffff"`,
	"tap":              `fillcolor="#ffffff"`,
}

func dotNode(n Node) string { return dotNodeLabelled(n, true) }

// dotNodeLabelled writes one node; rich is the bold title over the
// subtitle, else a plain title with the subtitle as tooltip.
func dotNodeLabelled(n Node, rich bool) string {
	label := htmlLabel(n)
	if !rich {
		label = q(n.Title) + ", tooltip=" + q(n.Subtitle)
	}
	attrs := []string{"id=" + q(n.ID), "class=" + q(n.Kind), "label=" + label}
	kind, _, _ := strings.Cut(n.Kind, " ") // a merged node: its own kind first
	if s, ok := nodeStyle[kind]; ok {
		attrs = append(attrs, s)
	}
	return fmt.Sprintf("%s [%s];", q(n.ID), strings.Join(attrs, ", "))
}

// htmlLabel is the title in bold over the subtitle in small type.
func htmlLabel(n Node) string {
	sub := n.Subtitle
	if r := []rune(sub); len(r) > 44 {
		sub = string(r[:43]) + "…"
	}
	if sub == "" {
		return "<<b>" + htmlEscape(n.Title) + "</b>>"
	}
	return "<<b>" + htmlEscape(n.Title) + "</b><br/><font point-size=\"8\" color=\"#475569\">" + htmlEscape(sub) + "</font>>"
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;")

func htmlEscape(s string) string { return htmlEscaper.Replace(s) }

// q quotes an id or string for DOT.
func q(s string) string { return `"` + dotEscaper.Replace(s) + `"` }

var dotEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
