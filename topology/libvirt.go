package topology

import (
	"strings"

	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/libvirtview"
)

// Node kinds and edges of libvirt objects.
const (
	KindVM             = "vm"
	KindVMNIC          = "vm_nic" // a VM NIC without a host device (hostdev, user)
	KindLibvirtNetwork = "libvirt_network"

	EdgeVMNIC     = "vm_nic"     // VM → its NIC: the host tap (or macvtap), or a vm_nic node
	EdgeVMNetwork = "vm_network" // VM → the libvirt network a NIC is attached to
)

// VMID is the node id of a libvirt domain: its UUID, stable across
// redefinitions and restarts (never the hypervisor's domain id).
func VMID(uuid string) string { return "vm:" + uuid }

// VMNICID is the node id of a VM NIC that has no host device.
func VMNICID(uuid, key string) string { return "vmnic:" + uuid + "/" + key }

// LibvirtNetworkID is the node id of a libvirt network.
func LibvirtNetworkID(uuid string) string { return "libvirtnet:" + uuid }

// VMAttachment is a VM NIC resolved to the host link that carries it.
type VMAttachment struct {
	Domain *libvirtview.Domain
	NIC    libvirtview.NIC
	// Interface is the host-side device (tap vnetN, macvtapN) in the host
	// namespace, "" when the NIC has none or it is not (yet) in the scan.
	Interface string
	// Bridge is the bridge the device is enslaved to as the kernel says,
	// else the one libvirt says, "" when none.
	Bridge string
	Stats  hostnet.Stats
}

// VMAttachments resolves every NIC of every domain in v to its host link.
// A tap's own MAC is the guest's with the first octet fe; a device whose
// name matches but whose MAC does not (a tap reused by another VM between
// the libvirt and the kernel reading) is not taken.
func VMAttachments(snap *hostnet.Snapshot, v *libvirtview.View) []VMAttachment {
	var out []VMAttachment
	for i := range v.Domains {
		d := &v.Domains[i]
		for _, nic := range d.NICs {
			a := VMAttachment{Domain: d, NIC: nic, Bridge: nic.Bridge}
			if nic.Target != "" {
				if l, ok := snap.Link(hostnet.HostID, nic.Target); ok && tapMatches(l, nic) {
					a.Interface, a.Stats = l.Name, l.Stats
					if l.Master != "" {
						a.Bridge = l.Master
					}
				}
			}
			out = append(out, a)
		}
	}
	return out
}

// tapMatches reports whether l can be the host device of nic: libvirt gives
// a tap the guest MAC with the first octet fe; a macvtap carries the guest
// MAC itself.
func tapMatches(l hostnet.Link, nic libvirtview.NIC) bool {
	if l.MAC == "" || nic.MAC == "" || len(l.MAC) != len(nic.MAC) {
		return true // nothing to compare
	}
	if strings.EqualFold(l.MAC, nic.MAC) {
		return true
	}
	return strings.EqualFold(l.MAC[2:], nic.MAC[2:]) && strings.EqualFold(l.MAC[:2], "fe")
}

// VMTaps returns the host devices of running VMs' NICs by name.
func VMTaps(snap *hostnet.Snapshot, v *libvirtview.View) map[string]VMAttachment {
	out := map[string]VMAttachment{}
	for _, a := range VMAttachments(snap, v) {
		if a.Interface != "" {
			out[a.Interface] = a
		}
	}
	return out
}

func (b *builder) libvirt(snap *hostnet.Snapshot, v *libvirtview.View) {
	netByName := map[string]string{}
	for _, n := range v.Networks {
		netByName[n.Name] = n.UUID
		sub := n.ForwardMode + " libvirt network"
		if len(n.Addresses) > 0 {
			sub += " " + n.Addresses[0]
		}
		if !n.Active {
			sub += " (inactive)"
		}
		id := LibvirtNetworkID(n.UUID)
		b.node(Node{ID: id, Kind: KindLibvirtNetwork, Title: n.Name, Subtitle: sub})
		if n.Bridge != "" {
			b.edge(EdgeBacks, id, InterfaceID(hostnet.HostID, n.Bridge))
		}
	}
	for i := range v.Domains {
		d := &v.Domains[i]
		b.node(Node{ID: VMID(d.UUID), Kind: KindVM, Title: d.Name, Subtitle: d.Type + " VM (" + d.State + ")"})
	}
	for _, a := range VMAttachments(snap, v) {
		vm := VMID(a.Domain.UUID)
		switch {
		case a.Interface != "":
			b.edge(EdgeVMNIC, vm, InterfaceID(hostnet.HostID, a.Interface))
		case a.NIC.Target == "" && a.Domain.State == "running":
			id := VMNICID(a.Domain.UUID, a.NIC.Key())
			b.node(Node{ID: id, Kind: KindVMNIC, Title: a.NIC.Key(), Subtitle: a.NIC.Type + " NIC " + a.NIC.MAC})
			b.edge(EdgeVMNIC, vm, id)
		}
		if a.NIC.Network != "" {
			if uuid, ok := netByName[a.NIC.Network]; ok {
				b.edge(EdgeVMNetwork, vm, LibvirtNetworkID(uuid))
			}
		}
	}
}
