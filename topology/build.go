package topology

import (
	"fmt"
	"strings"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/hostnet"
)

// Build assembles the graph. A nil view in views (Docker or libvirt not
// watched or not reachable) leaves its objects out: the graph then holds
// what the kernel and the other daemons show.
func Build(snap *hostnet.Snapshot, views Views) *Graph {
	view := views.Docker
	b := builder{g: &Graph{}, nodes: map[string]bool{}, edges: map[string]bool{}}
	owner := map[string]string{} // netns id → container name owning it
	if view != nil {
		for i := range view.Containers {
			c := &view.Containers[i]
			ns := ContainerNetns(snap, view, c)
			if ns == "" || ns == "host" {
				continue
			}
			// The container that owns the sandbox wins over ones joined to it
			// with --network container:X.
			if _, taken := owner[ns]; !taken || !strings.HasPrefix(c.NetworkMode, "container:") {
				owner[ns] = c.Name
			}
		}
	}
	for _, ns := range snap.Namespaces {
		if ns.ID == "host" {
			continue
		}
		title := ns.Name
		if title == "" {
			title = ns.ID
		}
		sub := ns.Kind + " namespace"
		if c := owner[ns.ID]; c != "" {
			sub = "netns of container " + c
		} else if ns.OwnerComm != "" {
			sub = fmt.Sprintf("%s namespace, pid %d (%s)", ns.Kind, ns.OwnerPID, ns.OwnerComm)
		}
		b.node(Node{ID: NetnsID(ns.ID), Kind: KindNetns, Title: title, Subtitle: sub, Netns: ns.ID})
	}
	var kinds map[string]string
	if views.OVS != nil {
		kinds = ovsKinds(snap, views.OVS)
	}
	b.links(snap, kinds)
	if view != nil {
		b.docker(snap, view)
		b.publishedPorts(view)
	}
	if views.Libvirt != nil {
		b.libvirt(snap, views.Libvirt)
	}
	if views.OVS != nil {
		b.ovs(snap, views.OVS)
	}
	sortGraph(b.g)
	return b.g
}

type builder struct {
	g     *Graph
	nodes map[string]bool
	edges map[string]bool
}

func (b *builder) node(n Node) {
	if b.nodes[n.ID] {
		return
	}
	b.nodes[n.ID] = true
	b.g.Nodes = append(b.g.Nodes, n)
}

func (b *builder) edge(kind, src, dst string) {
	if !b.nodes[src] || !b.nodes[dst] {
		return // an end is missing (vanished mid-scan, or loopback): no dangling edge
	}
	id := kind + ":" + src + "--" + dst
	if b.edges[id] {
		return
	}
	b.edges[id] = true
	b.g.Edges = append(b.g.Edges, Edge{ID: id, Source: src, Target: dst, Kind: kind})
}

// links adds every link as a node; kinds replaces the kernel's kind of
// host links a daemon knows better (OVS internal ports and datapath).
func (b *builder) links(snap *hostnet.Snapshot, kinds map[string]string) {
	for _, l := range snap.Links {
		if l.Kind == "loopback" {
			continue
		}
		sub := l.Kind
		if l.Netns != "host" {
			sub += " in " + l.Netns
		}
		if len(l.Addrs) > 0 {
			sub += " " + l.Addrs[0].Prefix.String()
		}
		kind := l.Kind
		if k, ok := kinds[l.Name]; ok && l.Netns == hostnet.HostID {
			kind = k
			sub = strings.Replace(sub, l.Kind, k+" ("+l.Kind+")", 1)
		}
		b.node(Node{ID: InterfaceID(l.Netns, l.Name), Kind: kind, Title: l.Name, Subtitle: sub, Netns: l.Netns})
	}
	for _, l := range snap.Links {
		id := InterfaceID(l.Netns, l.Name)
		if l.Master != "" {
			b.edge(EdgeMember, id, InterfaceID(l.Netns, l.Master))
		}
		if l.Parent != "" {
			pn := l.ParentNetns
			if pn == "" {
				pn = l.Netns
			}
			b.edge(EdgeParent, id, InterfaceID(pn, l.Parent))
		}
		if l.Netns != "host" {
			b.edge(EdgeNetns, id, NetnsID(l.Netns))
		}
		if l.Kind != "veth" || l.PeerName == "" {
			continue
		}
		peer := InterfaceID(l.PeerNetns, l.PeerName)
		if id < peer { // one edge per pair
			b.edge(EdgeVeth, id, peer)
			if p, ok := snap.Link(l.PeerNetns, l.PeerName); ok && l.MasterKind == "bridge" && p.MasterKind == "bridge" {
				b.edge(EdgeVethLink, InterfaceID(l.Netns, l.Master), InterfaceID(p.Netns, p.Master))
			}
		}
	}
}

func (b *builder) docker(snap *hostnet.Snapshot, view *dockerview.View) {
	for _, n := range view.Networks {
		sub := n.Driver + " network"
		if len(n.Subnets) > 0 {
			sub += " " + n.Subnets[0]
		}
		id := DockerNetworkID(n.ID)
		b.node(Node{ID: id, Kind: KindDockerNetwork, Title: n.Name, Subtitle: sub})
		if n.Bridge != "" {
			b.edge(EdgeBacks, id, InterfaceID("host", n.Bridge))
		}
	}
	netByName := map[string]string{}
	for _, n := range view.Networks {
		netByName[n.Name] = n.ID
	}
	for i := range view.Containers {
		c := &view.Containers[i]
		id := ContainerID(c.ID)
		b.node(Node{ID: id, Kind: KindContainer, Title: c.Name, Subtitle: c.Image + " (" + c.State + ")"})
		if ns := ContainerNetns(snap, view, c); ns != "" && ns != "host" {
			b.edge(EdgeSandbox, id, NetnsID(ns))
		}
		for _, ep := range c.Endpoints {
			nid := ep.NetworkID
			if nid == "" {
				nid = netByName[ep.Network]
			}
			b.edge(EdgeEndpoint, id, DockerNetworkID(nid))
		}
	}
}
