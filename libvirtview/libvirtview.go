// Package libvirtview keeps a cached view of libvirt domains (VMs), their
// network interfaces and libvirt networks, read from libvirtd over its RPC
// socket (github.com/digitalocean/go-libvirt, pure Go) and the domain and
// network XML (libvirt.org/go/libvirtxml), kept current from lifecycle and
// device events plus a periodic full resync.
//
// A Prometheus scrape reads the cache with [Watcher.View] and never calls
// libvirtd itself, so a hung or restarting libvirtd cannot hang a scrape.
//
// Typical use:
//
//	w, err := libvirtview.New(libvirtview.Options{Logger: logger})
//	if err != nil { ... }
//	defer w.Close()
//	go w.Run(ctx)
//	...
//	v, err := w.View() // on each scrape; err wraps ErrUnavailable when libvirtd is down
package libvirtview

import (
	"errors"
	"time"
)

// Domain is one libvirt domain (VM) as its live XML describes it.
type Domain struct {
	Name string
	UUID string // lower-case canonical form
	// ID is the hypervisor's domain id of a running domain, 0 when inactive.
	ID int
	// State is "running", "blocked", "paused", "shutdown", "shutoff",
	// "crashed", "pmsuspended" or "nostate" (virDomainState).
	State string
	// Type is the domain type attribute: "qemu", "kvm", ...
	Type string
	NICs []NIC
	// Partial is true when the domain's XML could not be read or parsed:
	// only Name, UUID, ID and State are known and NICs is empty (counted in
	// ParseErrors; see Watcher.Stats for the breakdown).
	Partial bool
}

// NIC is one <interface> of a domain.
type NIC struct {
	// Type is the interface type attribute: "bridge", "network", "direct",
	// "ethernet", "hostdev", "user", "vhostuser", ...
	Type string
	// MAC is the guest's MAC (<mac address>), lower-case; the tap's own MAC
	// differs (fe:...).
	MAC string
	// Target is the host device (<target dev>): the tap "vnetN" (or macvtap);
	// "" for NICs without one (hostdev/SR-IOV, user) or inactive domains.
	Target string
	// Bridge is the host bridge the tap joins: <source bridge> for type
	// bridge, the <source bridge> libvirt fills in for type network (else the
	// network's bridge), "" otherwise.
	Bridge string
	// Network is the libvirt network name (<source network>), type network only.
	Network string
	// SourceDev is the host device of a direct (macvtap) NIC (<source dev>).
	SourceDev string
	// SourceMode is the macvtap mode of a direct NIC (bridge, vepa, private, passthrough).
	SourceMode string
	Model      string // <model type>: "virtio", "e1000", "rtl8139", ...
	Alias      string // <alias name>: "net0", ...
	// VirtualPort is the <virtualport type>: "openvswitch", "802.1Qbh", ...
	VirtualPort string
	// InterfaceID is the virtualport's interfaceid parameter (OVS iface-id).
	InterfaceID string
}

// Key identifies the NIC within its domain: the target when there is one,
// else the alias, else the MAC. Two NICs of one domain never share a key
// (see View), so it can label series without duplicates.
func (n NIC) Key() string {
	switch {
	case n.Target != "":
		return n.Target
	case n.Alias != "":
		return n.Alias
	}
	return n.MAC
}

// Network is one libvirt network.
type Network struct {
	Name   string
	UUID   string
	Bridge string // <bridge name>: "virbr0", ...; "" for networks without one
	// ForwardMode is <forward mode>: "nat", "route", "open", "bridge",
	// "private", "vepa", "passthrough", "hostdev"; "isolated" without <forward>.
	ForwardMode string
	Active      bool
	// Addresses are the network's own addresses in CIDR form (<ip address
	// prefix|netmask>), in XML order.
	Addresses []string
	// DHCPRanges are "start-end" of each <dhcp><range>, in XML order.
	DHCPRanges []string
	// Leases are the DHCP leases of an active network (NetworkGetDhcpLeases).
	Leases []Lease
}

// Lease is one DHCP lease handed out by a libvirt network's dnsmasq.
type Lease struct {
	MAC      string // lower-case
	IP       string // address without prefix
	Prefix   int
	Hostname string // "" when the client sent none
	Expiry   time.Time
}

// View is a consistent copy of the cache. Domains and Networks are sorted by
// name; callers must not modify them.
type View struct {
	Domains  []Domain
	Networks []Network
	// Synced is when the view was last fully re-listed.
	Synced time.Time
	// ParseErrors counts, since start, domain and network XML that could not
	// be read or parsed (the object is kept with what the list said, see
	// Domain.Partial) and NICs left out for a repeated key. Bad input is
	// never a failed view. Watcher.Stats breaks it down and also counts
	// domains that vanished between list and read.
	ParseErrors uint64
}

// ErrUnavailable is wrapped by View's error while libvirtd cannot be reached
// (not installed, stopped, restarting) or has not answered the first list.
var ErrUnavailable = errors.New("libvirt unavailable")

// Domain returns the domain with the given name or UUID.
func (v View) Domain(nameOrUUID string) (Domain, bool) {
	for _, d := range v.Domains {
		if d.Name == nameOrUUID || d.UUID == nameOrUUID {
			return d, true
		}
	}
	return Domain{}, false
}

// Network returns the libvirt network with the given name.
func (v View) Network(name string) (Network, bool) {
	for _, n := range v.Networks {
		if n.Name == name {
			return n, true
		}
	}
	return Network{}, false
}
