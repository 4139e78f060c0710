package topology

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/tangfeixiong/nta/dockerview"
)

// The north-south path through Docker's NAT: host → published port →
// container.
const (
	KindPublishedPort = "published_port"
	EdgePublish       = "publish" // host namespace → a port it publishes
	EdgeDNAT          = "dnat"    // published port → the container it is DNAT'd to
)

// PublishedPortID is the node id of a published port, e.g.
// "port:0.0.0.0:80/tcp": a host address, port and protocol belong to one
// container at a time.
func PublishedPortID(p dockerview.Port) string { return "port:" + PublishedPortName(p) }

// PublishedPortName is a port's title: "0.0.0.0:80/tcp", "[::]:80/tcp",
// "*:80/tcp" for a binding without address.
func PublishedPortName(p dockerview.Port) string {
	host := p.HostIP
	if host == "" {
		host = "*"
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a, p.HostPort).String() + "/" + p.Proto
	}
	return host + ":" + strconv.Itoa(int(p.HostPort)) + "/" + p.Proto
}

// publishedPorts adds a node per published port, linked from the host's
// namespace (a node of its own only when something is published) and to the
// container behind it.
func (b *builder) publishedPorts(view *dockerview.View) {
	for i := range view.Containers {
		c := &view.Containers[i]
		for _, p := range c.Ports {
			b.node(Node{ID: NetnsID("host"), Kind: KindNetns, Title: "host", Subtitle: "host namespace", Netns: "host"})
			id := PublishedPortID(p)
			b.node(Node{ID: id, Kind: KindPublishedPort, Title: PublishedPortName(p),
				Subtitle: fmt.Sprintf("DNAT to %s:%d/%s", c.Name, p.ContainerPort, p.Proto)})
			b.edge(EdgePublish, NetnsID("host"), id)
			b.edge(EdgeDNAT, id, ContainerID(c.ID))
		}
	}
}
