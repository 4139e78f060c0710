package topology

import (
	"net/netip"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/hostnet"
)

// Interface roles, as understood by flowagg.Selector.
const (
	RoleBridge        = "bridge"
	RoleDockerBridge  = "docker-bridge"
	RoleContainerVeth = "container-veth"
	RoleVMTap         = "vm-tap"
)

// Roles returns, for the host namespace, interface name → roles taken from
// what Docker and the kernel say rather than from naming conventions: the
// bridges behind Docker networks, the host ends of container veths, taps.
// view may be nil.
func Roles(snap *hostnet.Snapshot, view *dockerview.View) map[string][]string {
	roles := map[string][]string{}
	add := func(name, role string) {
		for _, r := range roles[name] {
			if r == role {
				return
			}
		}
		roles[name] = append(roles[name], role)
	}
	for _, l := range snap.LinksIn(hostnet.HostID) {
		switch l.Kind {
		case "bridge":
			add(l.Name, RoleBridge)
		case "tap":
			add(l.Name, RoleVMTap)
		}
	}
	if view == nil {
		return roles
	}
	for _, n := range view.Networks {
		if n.Bridge != "" {
			add(n.Bridge, RoleDockerBridge)
		}
	}
	for _, a := range Attachments(snap, view) {
		if a.HostNetns == hostnet.HostID && a.HostInterface != "" {
			add(a.HostInterface, RoleContainerVeth)
		}
	}
	return roles
}

// NameIndex maps IPs and MACs to the workload that owns them: container
// names for container endpoints, "network/NAME" for a Docker network's
// gateway and, failing an exact owner, for any other address in its subnets.
type NameIndex struct {
	byIP    map[netip.Addr]string
	byMAC   map[string]string
	subnets []namedPrefix
}

type namedPrefix struct {
	prefix netip.Prefix
	name   string
}

// Names builds a NameIndex from the Docker view and the host snapshot.
func Names(snap *hostnet.Snapshot, view *dockerview.View) *NameIndex {
	ix := &NameIndex{byIP: map[netip.Addr]string{}, byMAC: map[string]string{}}
	setIP := func(ip, name string) {
		if a, err := netip.ParseAddr(ip); err == nil {
			ix.byIP[a.Unmap()] = name
		}
	}
	if view == nil {
		return ix
	}
	for _, n := range view.Networks {
		for _, gw := range n.Gateways {
			setIP(gw, "network/"+n.Name)
		}
		for _, sn := range n.Subnets {
			if p, err := netip.ParsePrefix(sn); err == nil {
				ix.subnets = append(ix.subnets, namedPrefix{p.Masked(), "network/" + n.Name})
			}
		}
	}
	for _, c := range view.Containers {
		for _, ep := range c.Endpoints {
			setIP(ep.IPv4, c.Name)
			setIP(ep.IPv6, c.Name)
			if ep.MAC != "" {
				ix.byMAC[ep.MAC] = c.Name
			}
		}
	}
	return ix
}

// IP returns the workload name owning ip (text form), "" when unknown.
func (ix *NameIndex) IP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	return ix.Addr(a)
}

// Addr returns the workload name owning a, "" when unknown.
func (ix *NameIndex) Addr(a netip.Addr) string {
	a = a.Unmap()
	if n, ok := ix.byIP[a]; ok {
		return n
	}
	for _, sn := range ix.subnets {
		if sn.prefix.Contains(a) {
			return sn.name
		}
	}
	return ""
}

// MAC returns the workload name owning mac, "" when unknown.
func (ix *NameIndex) MAC(mac string) string { return ix.byMAC[mac] }
