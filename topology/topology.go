// Package topology joins what hostnet reads from the kernel with what the
// daemons say (dockerview: Docker Engine; libvirtview: libvirtd) into one
// graph of the host's wiring: namespaces, interfaces, bridges, veth pairs,
// containers and Docker networks, VMs, their NICs and libvirt networks. Node and edge ids are built from kind + namespace + name (or a
// Docker id), never from an ifindex, so they are stable across scrapes and
// exporter restarts. The graph feeds the Node Graph metrics and the
// `nta-exporter topology` command.
package topology

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/libvirtview"
	"github.com/tangfeixiong/nta/ovsview"
)

// Node kinds that are not link kinds.
const (
	KindNetns         = "netns"
	KindContainer     = "container"
	KindDockerNetwork = "docker_network"
)

// Edge kinds.
const (
	EdgeMember   = "member"    // interface → its master (bridge, bond, OVS)
	EdgeVeth     = "veth"      // one end of a veth pair → the other
	EdgeVethLink = "veth_link" // bridge → bridge joined by a veth pair
	EdgeNetns    = "netns"     // interface → the namespace it lives in (non-host)
	EdgeSandbox  = "sandbox"   // container → its network namespace
	EdgeBacks    = "backs"     // Docker network → the Linux bridge behind it
	EdgeEndpoint = "endpoint"  // container → Docker network it is attached to
	EdgeParent   = "parent"    // vlan/macvlan/ipvlan/vxlan → lower device
)

// Views are the daemons' cached views topology joins with the kernel's
// reading. Any may be nil: that daemon is not watched or not answering, and
// the graph, roles and names hold what the others show. A new source adds
// its view here.
type Views struct {
	Docker  *dockerview.View
	Libvirt *libvirtview.View
	OVS     *ovsview.View
}

// Node is one vertex of the host graph.
type Node struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Title    string `json:"title"`
	Subtitle string `json:"subtitle"`
	Netns    string `json:"netns,omitempty"`
}

// Edge is one relationship. Source and Target are node ids.
type Edge struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Target string `json:"target"`
	Kind   string `json:"kind"`
}

// Graph is the host's wiring.
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// InterfaceID is the node id of a link.
func InterfaceID(netns, name string) string { return "if:" + netns + "/" + name }

// NetnsID is the node id of a namespace.
func NetnsID(netns string) string { return "netns:" + netns }

// ContainerID is the node id of a container.
func ContainerID(id string) string { return "container:" + short(id) }

// DockerNetworkID is the node id of a Docker network.
func DockerNetworkID(id string) string { return "dockernet:" + short(id) }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Attachment is a container's endpoint on a Docker network resolved to the
// links that carry it: the interface inside the container's namespace and
// the host-side end of its veth.
type Attachment struct {
	Container     *dockerview.Container
	Endpoint      dockerview.Endpoint
	Netns         string // namespace id of the container's interface
	Interface     string // the container-side interface (eth0), "" when not found
	HostNetns     string // namespace id of the veth peer, "" when not a veth
	HostInterface string // host-side veth, "" when not found
	Stats         hostnet.Stats
}

// ContainerNetns returns the namespace id a container's network lives in,
// or "" when the container has none (stopped, --network none still has one).
func ContainerNetns(snap *hostnet.Snapshot, view *dockerview.View, c *dockerview.Container) string {
	mode := c.NetworkMode
	if mode == "host" {
		return "host"
	}
	if strings.HasPrefix(mode, "container:") {
		ref := strings.TrimPrefix(mode, "container:")
		for i := range view.Containers {
			o := &view.Containers[i]
			if o.ID == ref || strings.HasPrefix(o.ID, ref) || o.Name == ref {
				if o.NetworkMode == mode { // self-reference guard
					return ""
				}
				return ContainerNetns(snap, view, o)
			}
		}
		return ""
	}
	if c.SandboxKey == "" {
		return ""
	}
	if ns, ok := snap.Namespace("docker:" + filepath.Base(c.SandboxKey)); ok {
		return ns.ID
	}
	if ino, err := hostnet.InodeOf(c.SandboxKey); err == nil {
		if ns, ok := snap.NamespaceByInode(ino); ok {
			return ns.ID
		}
	}
	return ""
}

// Attachments resolves every endpoint of every running container.
func Attachments(snap *hostnet.Snapshot, view *dockerview.View) []Attachment {
	var out []Attachment
	for i := range view.Containers {
		c := &view.Containers[i]
		ns := ContainerNetns(snap, view, c)
		for _, ep := range c.Endpoints {
			a := Attachment{Container: c, Endpoint: ep, Netns: ns}
			if ns != "" && ns != "host" {
				if l, ok := endpointLink(snap.LinksIn(ns), ep); ok {
					a.Interface, a.Stats = l.Name, l.Stats
					a.HostNetns, a.HostInterface = l.PeerNetns, l.PeerName
				}
			}
			out = append(out, a)
		}
	}
	return out
}

// endpointLink finds the link carrying an endpoint: by MAC, else by IPv4.
func endpointLink(links []hostnet.Link, ep dockerview.Endpoint) (hostnet.Link, bool) {
	if ep.MAC != "" {
		for _, l := range links {
			if strings.EqualFold(l.MAC, ep.MAC) {
				return l, true
			}
		}
	}
	for _, l := range links {
		for _, a := range l.Addrs {
			if ep.IPv4 != "" && a.Prefix.Addr().String() == ep.IPv4 {
				return l, true
			}
		}
	}
	return hostnet.Link{}, false
}

func sortGraph(g *Graph) {
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].ID < g.Nodes[j].ID })
	sort.Slice(g.Edges, func(i, j int) bool { return g.Edges[i].ID < g.Edges[j].ID })
}
