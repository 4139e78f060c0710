package topology

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/tangfeixiong/nta/hostnet"
)

// Interface roles. topology owns them: the capture selector
// (afpacket.Selector) treats them as opaque strings, matched against
// --collector.flows.roles. A new source adds its roles here.
const (
	// RoleAll is every interface of the host namespace but loopback.
	RoleAll = "all"
	// RoleBridge is any Linux bridge.
	RoleBridge = "bridge"
	// RoleDockerBridge is the bridge of a Docker network (docker0, br-<id>).
	RoleDockerBridge = "docker-bridge"
	// RoleContainerVeth is the host end of a container's veth pair.
	RoleContainerVeth = "container-veth"
	// RoleVMTap is a tap (or macvtap) device of a virtual machine.
	RoleVMTap = "vm-tap"
	// RoleOVSPort is an Open vSwitch interface that is a kernel link of the
	// host namespace (a veth, tap or internal port added to an OVS bridge).
	RoleOVSPort = "ovs-port"
)

// KnownRoles lists every role Roles can give, for flag validation.
var KnownRoles = []string{RoleAll, RoleBridge, RoleDockerBridge, RoleContainerVeth, RoleVMTap, RoleOVSPort}

// ValidateRoles reports a role name Roles never gives.
func ValidateRoles(roles []string) error {
	for _, r := range roles {
		if !slices.Contains(KnownRoles, r) {
			return fmt.Errorf("unknown interface role %q — use one of %s", r, strings.Join(KnownRoles, ", "))
		}
	}
	return nil
}

// dockerBridgeName is how dockerd names the bridges it creates.
var dockerBridgeName = regexp.MustCompile(`^(docker0|br-[0-9a-f]{12})$`)

// Roles returns, for the host namespace, interface name → roles. Roles come
// from what the kernel and the daemons say: link kinds (bridge), the bridges
// behind Docker networks and the host ends of container veths from the
// Docker view, the taps of VMs from the libvirt view. Where a view is
// missing (nil: the daemon absent or not answering) conventions stand in
// for it: a bridge named like dockerd's (docker0, br-<12 hex>) is a Docker
// bridge and a veth enslaved to one is a container veth; without libvirt,
// every tap and macvtap is taken for a VM's, but OVS's own (internal ports,
// ovs-netdev) when the OVS view says so. The kernel links the OVS view
// lists are OVS ports. Every link but loopback has RoleAll.
func Roles(snap *hostnet.Snapshot, views Views) map[string][]string {
	view := views.Docker
	roles := map[string][]string{}
	add := func(name, role string) {
		if !slices.Contains(roles[name], role) {
			roles[name] = append(roles[name], role)
		}
	}
	links := snap.LinksIn(hostnet.HostID)
	var ovsOwn map[string]string // OVS's own devices: not VM taps
	if views.OVS != nil {
		ovsOwn = ovsKinds(snap, views.OVS)
		for name := range OVSKernelPorts(snap, views.OVS) {
			add(name, RoleOVSPort)
		}
	}
	for _, l := range links {
		if l.Kind == "loopback" {
			continue
		}
		add(l.Name, RoleAll)
		switch l.Kind {
		case "bridge":
			add(l.Name, RoleBridge)
			if view == nil && dockerBridgeName.MatchString(l.Name) {
				add(l.Name, RoleDockerBridge)
			}
		case "tap", "macvtap":
			if views.Libvirt == nil && ovsOwn[l.Name] == "" {
				add(l.Name, RoleVMTap)
			}
		}
	}
	if views.Libvirt != nil {
		for name := range VMTaps(snap, views.Libvirt) {
			add(name, RoleVMTap)
		}
	}
	if view == nil {
		for _, l := range links {
			if l.Kind == "veth" && l.MasterKind == "bridge" && dockerBridgeName.MatchString(l.Master) {
				add(l.Name, RoleContainerVeth)
			}
		}
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

// Names builds a NameIndex from the daemons' views and the host snapshot:
// containers by endpoint address and MAC, VMs by guest MAC and by the DHCP
// leases of libvirt networks, libvirt networks by their addresses.
func Names(snap *hostnet.Snapshot, views Views) *NameIndex {
	view := views.Docker
	ix := &NameIndex{byIP: map[netip.Addr]string{}, byMAC: map[string]string{}}
	setIP := func(ip, name string) {
		if a, err := netip.ParseAddr(ip); err == nil {
			ix.byIP[a.Unmap()] = name
		}
	}
	if lv := views.Libvirt; lv != nil {
		for i := range lv.Domains {
			d := &lv.Domains[i]
			for _, nic := range d.NICs {
				if nic.MAC != "" {
					ix.byMAC[strings.ToLower(nic.MAC)] = d.Name
				}
			}
		}
		for _, n := range lv.Networks {
			for _, a := range n.Addresses {
				if p, err := netip.ParsePrefix(a); err == nil {
					ix.byIP[p.Addr().Unmap()] = "network/" + n.Name
					ix.subnets = append(ix.subnets, namedPrefix{p.Masked(), "network/" + n.Name})
				}
			}
			for _, l := range n.Leases {
				if name := ix.byMAC[strings.ToLower(l.MAC)]; name != "" {
					setIP(l.IP, name)
				}
			}
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
				ix.byMAC[strings.ToLower(ep.MAC)] = c.Name
			}
		}
	}
	return ix
}

// WithARP returns a copy of ix that also names the addresses ARP showed at
// a known workload's MAC (bindings: IP → lower-case MAC, as the flow tables'
// ARP trackers saw them): a VM whose address came from its own DHCP client
// or static config, not from a libvirt lease. Exact owners known otherwise
// win over ARP.
func (ix *NameIndex) WithARP(bindings map[netip.Addr]string) *NameIndex {
	out := &NameIndex{byIP: maps.Clone(ix.byIP), byMAC: ix.byMAC, subnets: ix.subnets}
	for ip, mac := range bindings {
		ip = ip.Unmap()
		if _, known := out.byIP[ip]; known {
			continue
		}
		if name := ix.byMAC[strings.ToLower(mac)]; name != "" {
			out.byIP[ip] = name
		}
	}
	return out
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
func (ix *NameIndex) MAC(mac string) string { return ix.byMAC[strings.ToLower(mac)] }
