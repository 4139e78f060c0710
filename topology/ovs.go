package topology

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/ovsview"
)

// Node kinds and edges of Open vSwitch objects.
const (
	KindOVSBridge = "ovs_bridge"
	KindOVSPort   = "ovs_port"
	// KindOVSInterface is an OVS interface with no kernel device of its own
	// (patch, a userspace tunnel, dpdk); one that is a kernel link (veth,
	// tap, internal) is that link's interface node.
	KindOVSInterface = "ovs_interface"
	// KindOVSInternal is a bridge's internal port, a tap in the kernel.
	KindOVSInternal = "ovs_internal"
	// KindOVSDatapath is the datapath's own device: ovs-netdev (userspace)
	// or ovs-system (kernel).
	KindOVSDatapath = "ovs_datapath"
	// KindTunnelEndpoint is a tunnel's remote end (remote_ip).
	KindTunnelEndpoint = "tunnel_endpoint"

	EdgeOVSPort      = "ovs_port"      // OVS bridge → its port
	EdgeOVSInterface = "ovs_interface" // port → its interface(s)
	EdgeOVSPatch     = "ovs_patch"     // patch interface ↔ its peer (one edge per pair)
	EdgeOVSTunnel    = "ovs_tunnel"    // tunnel interface → its remote endpoint
)

// OVSBridgeID is the node id of an OVS bridge, by name: stable across a
// redefinition, unlike its UUID.
func OVSBridgeID(name string) string { return "ovsbr:" + name }

// OVSPortID is the node id of a port of an OVS bridge.
func OVSPortID(bridge, port string) string { return "ovsport:" + bridge + "/" + port }

// OVSInterfaceID is the node id of an OVS interface without a kernel link.
func OVSInterfaceID(name string) string { return "ovsif:" + name }

// TunnelEndpointID is the node id of a tunnel's remote address.
func TunnelEndpointID(remoteIP string) string { return "tunnel:" + remoteIP }

// OVSKernelPorts returns the OVS interfaces that are links of the host
// namespace, by name: the same device seen from both sides.
func OVSKernelPorts(snap *hostnet.Snapshot, v *ovsview.View) map[string]ovsview.Interface {
	out := map[string]ovsview.Interface{}
	for _, b := range v.Bridges {
		for _, p := range b.Ports {
			for _, i := range p.Interfaces {
				if _, ok := snap.Link(hostnet.HostID, i.Name); ok && kernelBacked(i.Type) {
					out[i.Name] = i
				}
			}
		}
	}
	return out
}

// kernelBacked reports whether an OVS interface of type typ is, or can be,
// a kernel device of the same name.
func kernelBacked(typ string) bool {
	switch typ {
	case "system", "internal", "tap", "":
		return true
	}
	return false
}

// ovsKinds returns node kinds replacing the kernel's for OVS's own devices:
// internal ports and the datapath device are "tap" (userspace) or
// "openvswitch" (kernel) to the kernel, which says nothing to a reader.
func ovsKinds(snap *hostnet.Snapshot, v *ovsview.View) map[string]string {
	out := map[string]string{}
	for _, name := range []string{"ovs-netdev", "ovs-system"} {
		if _, ok := snap.Link(hostnet.HostID, name); ok {
			out[name] = KindOVSDatapath
		}
	}
	for name, i := range OVSKernelPorts(snap, v) {
		if i.Type == "internal" {
			out[name] = KindOVSInternal
		}
	}
	return out
}

func (b *builder) ovs(snap *hostnet.Snapshot, v *ovsview.View) {
	kernel := OVSKernelPorts(snap, v)
	ifaceNode := map[string]string{} // OVS interface name → node id
	for _, br := range v.Bridges {
		sub := "OVS bridge, " + br.DatapathType + " datapath"
		if br.FailMode != "" {
			sub += ", fail_mode " + br.FailMode
		}
		for _, c := range br.Controllers {
			sub += ", controller " + c.Target
			if !c.Connected {
				sub += " (not connected)"
			}
		}
		bid := OVSBridgeID(br.Name)
		b.node(Node{ID: bid, Kind: KindOVSBridge, Title: br.Name, Subtitle: sub})
		for _, p := range br.Ports {
			pid := OVSPortID(br.Name, p.Name)
			b.node(Node{ID: pid, Kind: KindOVSPort, Title: p.Name, Subtitle: portSubtitle(&p)})
			b.edge(EdgeOVSPort, bid, pid)
			for _, i := range p.Interfaces {
				id := InterfaceID(hostnet.HostID, i.Name)
				if _, ok := kernel[i.Name]; !ok {
					id = OVSInterfaceID(i.Name)
					b.node(Node{ID: id, Kind: KindOVSInterface, Title: i.Name, Subtitle: ifaceSubtitle(&i)})
				}
				ifaceNode[i.Name] = id
				b.edge(EdgeOVSInterface, pid, id)
				if i.Tunnel() {
					tid := TunnelEndpointID(i.RemoteIP)
					b.node(Node{ID: tid, Kind: KindTunnelEndpoint, Title: i.RemoteIP, Subtitle: "remote end of " + i.Type + " tunnels"})
					b.edge(EdgeOVSTunnel, id, tid)
				}
			}
		}
	}
	for _, br := range v.Bridges {
		for _, p := range br.Ports {
			for _, i := range p.Interfaces {
				if i.Type != "patch" || i.Peer == "" {
					continue
				}
				a, z := ifaceNode[i.Name], ifaceNode[i.Peer]
				if z != "" && a < z { // one edge per pair; a peer that is not there: none
					b.edge(EdgeOVSPatch, a, z)
				}
			}
		}
	}
}

func portSubtitle(p *ovsview.Port) string {
	parts := []string{"OVS port"}
	if p.Tag >= 0 {
		parts = append(parts, "vlan "+strconv.Itoa(p.Tag))
	}
	if len(p.Trunks) > 0 {
		t := make([]string, len(p.Trunks))
		for i, v := range p.Trunks {
			t[i] = strconv.Itoa(v)
		}
		parts = append(parts, "trunks "+strings.Join(t, ","))
	}
	if p.Bonded() {
		parts = append(parts, fmt.Sprintf("bond %s of %d", p.BondMode, len(p.Interfaces)))
	}
	return strings.Join(parts, ", ")
}

func ifaceSubtitle(i *ovsview.Interface) string {
	s := i.Type + " OVS interface"
	switch {
	case i.Type == "patch":
		s += " → " + i.Peer
	case i.Tunnel():
		s += " to " + i.RemoteIP
		if i.Key != "" {
			s += " key " + i.Key
		}
	}
	if i.Error != "" {
		s += " (error: " + i.Error + ")"
	}
	return s
}
