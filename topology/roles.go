package topology

import (
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
// names for container endpoints, Docker network names for their gateways.
type NameIndex struct {
	byIP  map[string]string
	byMAC map[string]string
}

// Names builds a NameIndex from the Docker view and the host snapshot.
func Names(snap *hostnet.Snapshot, view *dockerview.View) *NameIndex {
	ix := &NameIndex{byIP: map[string]string{}, byMAC: map[string]string{}}
	if view == nil {
		return ix
	}
	for _, n := range view.Networks {
		for _, gw := range n.Gateways {
			ix.byIP[gw] = "network/" + n.Name
		}
	}
	for _, c := range view.Containers {
		for _, ep := range c.Endpoints {
			if ep.IPv4 != "" {
				ix.byIP[ep.IPv4] = c.Name
			}
			if ep.IPv6 != "" {
				ix.byIP[ep.IPv6] = c.Name
			}
			if ep.MAC != "" {
				ix.byMAC[ep.MAC] = c.Name
			}
		}
	}
	return ix
}

// IP returns the workload name owning ip, "" when unknown.
func (ix *NameIndex) IP(ip string) string { return ix.byIP[ip] }

// MAC returns the workload name owning mac, "" when unknown.
func (ix *NameIndex) MAC(mac string) string { return ix.byMAC[mac] }
