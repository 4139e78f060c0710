package topology

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteJSON writes the graph as indented JSON.
func (g *Graph) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(g)
}

// index gives the renderers quick lookups.
type index struct {
	byID     map[string]Node
	out      map[string][]Edge // by source
	in       map[string][]Edge // by target
	children map[string][]string
}

func (g *Graph) index() *index {
	ix := &index{byID: map[string]Node{}, out: map[string][]Edge{}, in: map[string][]Edge{}, children: map[string][]string{}}
	for _, n := range g.Nodes {
		ix.byID[n.ID] = n
	}
	for _, e := range g.Edges {
		ix.out[e.Source] = append(ix.out[e.Source], e)
		ix.in[e.Target] = append(ix.in[e.Target], e)
		if e.Kind == EdgeMember {
			ix.children[e.Target] = append(ix.children[e.Target], e.Source)
		}
	}
	return ix
}

// peerOf returns the other end of id's veth, "" when none.
// targets are the sorted targets of id's edges of a kind.
func (ix *index) targets(id, kind string) []string {
	var out []string
	for _, e := range ix.out[id] {
		if e.Kind == kind {
			out = append(out, e.Target)
		}
	}
	sort.Strings(out)
	return out
}

func (ix *index) peerOf(id string) string {
	for _, e := range ix.out[id] {
		if e.Kind == EdgeVeth {
			return e.Target
		}
	}
	for _, e := range ix.in[id] {
		if e.Kind == EdgeVeth {
			return e.Source
		}
	}
	return ""
}

func (ix *index) first(id, kind string, out bool) string {
	edges := ix.in[id]
	if out {
		edges = ix.out[id]
	}
	for _, e := range edges {
		if e.Kind == kind {
			if out {
				return e.Target
			}
			return e.Source
		}
	}
	return ""
}

// describe says where an interface leads: its veth peer, the peer's
// namespace, and the container or bridge behind it.
func (ix *index) describe(id string) string {
	n := ix.byID[id]
	s := fmt.Sprintf("%s [%s]", n.Title, n.Subtitle)
	peer := ix.peerOf(id)
	if peer == "" {
		return s
	}
	p := ix.byID[peer]
	s += " ⇄ " + p.Title
	if p.Netns != n.Netns {
		s += " @ " + p.Netns
		if c := ix.first(NetnsID(p.Netns), EdgeSandbox, false); c != "" {
			s += " (container " + ix.byID[c].Title + ")"
		}
	}
	if m := ix.first(peer, EdgeMember, true); m != "" {
		s += " → " + ix.byID[m].Kind + " " + ix.byID[m].Title
	}
	return s
}

// WriteText writes the graph as a tree: each namespace, its bridges with
// their ports, its other interfaces, then Docker networks and containers.
func (g *Graph) WriteText(w io.Writer) error {
	ix := g.index()
	byNetns := map[string][]Node{}
	var nsOrder []string
	for _, n := range g.Nodes {
		if n.Netns == "" || n.Kind == KindNetns {
			continue
		}
		if _, ok := byNetns[n.Netns]; !ok {
			nsOrder = append(nsOrder, n.Netns)
		}
		byNetns[n.Netns] = append(byNetns[n.Netns], n)
	}
	sort.Slice(nsOrder, func(i, j int) bool {
		if (nsOrder[i] == "host") != (nsOrder[j] == "host") {
			return nsOrder[i] == "host"
		}
		return nsOrder[i] < nsOrder[j]
	})
	var b strings.Builder
	for _, ns := range nsOrder {
		head := "netns " + ns
		if nn, ok := ix.byID[NetnsID(ns)]; ok {
			head += " — " + nn.Subtitle
		}
		b.WriteString(head + "\n")
		for _, n := range byNetns[ns] {
			if ix.first(n.ID, EdgeMember, true) != "" {
				continue // printed under its master
			}
			b.WriteString("  " + ix.describe(n.ID) + "\n")
			kids := ix.children[n.ID]
			sort.Strings(kids)
			for i, k := range kids {
				branch := "├─ "
				if i == len(kids)-1 {
					branch = "└─ "
				}
				b.WriteString("    " + branch + ix.describe(k) + "\n")
			}
		}
	}
	g.writeNetworks(&b, ix, KindDockerNetwork, "docker network", EdgeEndpoint, "containers")
	for _, n := range g.Nodes {
		if n.Kind != KindContainer {
			continue
		}
		line := fmt.Sprintf("container %s [%s]", n.Title, n.Subtitle)
		if ns := ix.first(n.ID, EdgeSandbox, true); ns != "" {
			line += " in " + ix.byID[ns].Netns
		}
		b.WriteString(line + "\n")
	}
	for _, n := range g.Nodes {
		if n.Kind != KindPublishedPort {
			continue
		}
		line := fmt.Sprintf("published port %s: host", n.Title)
		if c := ix.first(n.ID, EdgeDNAT, true); c != "" {
			line += " → container " + ix.byID[c].Title
		}
		b.WriteString(line + " [" + n.Subtitle + "]\n")
	}
	g.writeNetworks(&b, ix, KindLibvirtNetwork, "libvirt network", EdgeVMNetwork, "VMs")
	for _, n := range g.Nodes {
		if n.Kind != KindVM {
			continue
		}
		b.WriteString(fmt.Sprintf("vm %s [%s]\n", n.Title, n.Subtitle))
		nics := ix.targets(n.ID, EdgeVMNIC)
		for i, id := range nics {
			branch := "├─ "
			if i == len(nics)-1 {
				branch = "└─ "
			}
			line := ix.describe(id)
			if m := ix.first(id, EdgeMember, true); m != "" {
				line += " → " + ix.byID[m].Kind + " " + ix.byID[m].Title
			}
			b.WriteString("    " + branch + line + "\n")
		}
	}
	g.writeOVS(&b, ix)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeNetworks writes one line per network node of kind: the bridge it
// is backed by and its members (the sources of member edges into it).
func (g *Graph) writeNetworks(b *strings.Builder, ix *index, kind, what, member, members string) {
	for _, n := range g.Nodes {
		if n.Kind != kind {
			continue
		}
		line := fmt.Sprintf("%s %s [%s]", what, n.Title, n.Subtitle)
		if br := ix.first(n.ID, EdgeBacks, true); br != "" {
			line += " → bridge " + ix.byID[br].Title
		}
		var names []string
		for _, e := range ix.in[n.ID] {
			if e.Kind == member {
				names = append(names, ix.byID[e.Source].Title)
			}
		}
		sort.Strings(names)
		if len(names) > 0 {
			line += "; " + members + ": " + strings.Join(names, ", ")
		}
		b.WriteString(line + "\n")
	}
}

// writeOVS writes each OVS bridge with its ports and their interfaces,
// where a patch leads and where a tunnel goes.
func (g *Graph) writeOVS(b *strings.Builder, ix *index) {
	for _, n := range g.Nodes {
		if n.Kind != KindOVSBridge {
			continue
		}
		fmt.Fprintf(b, "ovs bridge %s [%s]\n", n.Title, n.Subtitle)
		ports := ix.targets(n.ID, EdgeOVSPort)
		for i, pid := range ports {
			branch, cont := "├─ ", "│  "
			if i == len(ports)-1 {
				branch, cont = "└─ ", "   "
			}
			p := ix.byID[pid]
			ifaces := ix.targets(pid, EdgeOVSInterface)
			line := fmt.Sprintf("port %s [%s]", p.Title, p.Subtitle)
			if len(ifaces) == 1 && ix.byID[ifaces[0]].Title == p.Title {
				b.WriteString("    " + branch + line + ": " + ix.ovsIface(ifaces[0]) + "\n")
				continue
			}
			b.WriteString("    " + branch + line + "\n")
			for _, id := range ifaces {
				b.WriteString("    " + cont + "  · " + ix.ovsIface(id) + "\n")
			}
		}
	}
}

// ovsIface describes an OVS interface: the kernel link it is (and where
// that leads), its patch peer's bridge, its tunnel's remote end.
func (ix *index) ovsIface(id string) string {
	n := ix.byID[id]
	s := ix.describe(id)
	if n.Kind == KindOVSInterface {
		s = fmt.Sprintf("%s [%s]", n.Title, n.Subtitle)
	}
	for _, e := range append(ix.out[id], ix.in[id]...) {
		switch e.Kind {
		case EdgeOVSPatch:
			other := e.Target
			if other == id {
				other = e.Source
			}
			if port := ix.first(other, EdgeOVSInterface, false); port != "" {
				if br := ix.first(port, EdgeOVSPort, false); br != "" {
					s += " ⇄ patch to bridge " + ix.byID[br].Title
				}
			}
		case EdgeOVSTunnel:
			s += " ⇢ tunnel to " + ix.byID[e.Target].Title
		case EdgeVMNIC:
			s += " ← vm " + ix.byID[e.Source].Title
		}
	}
	return s
}
