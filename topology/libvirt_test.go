package topology

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/libvirtview"
)

// libvirtFixture: vm1 with a tap on the Linux bridge ntbr0 and a tap on the
// isolated libvirt network ntnet (bridge virbr9), vm2 with a hostdev NIC (no
// tap) and a tap whose name was reused by another device (MAC mismatch),
// an inactive vm3, and an OVS-plugged tap (master not a kernel bridge).
func libvirtFixture() (*hostnet.Snapshot, *libvirtview.View) {
	host := func(name, kind, mac, master string, s hostnet.Stats) hostnet.Link {
		l := hostnet.Link{Netns: hostnet.HostID, Name: name, Kind: kind, MAC: mac, Master: master, Stats: s}
		if master != "" {
			l.MasterKind = "bridge"
		}
		return l
	}
	snap := &hostnet.Snapshot{
		Namespaces: []hostnet.Namespace{{ID: hostnet.HostID, Kind: hostnet.KindHost}},
		Links: []hostnet.Link{
			host("lo", "loopback", "", "", hostnet.Stats{}),
			host("ntbr0", "bridge", "02:00:00:00:00:01", "", hostnet.Stats{}),
			host("virbr9", "bridge", "52:54:00:aa:00:01", "", hostnet.Stats{}),
			host("vnet0", "tap", "fe:54:00:00:00:01", "ntbr0", hostnet.Stats{RxBytes: 100, TxBytes: 7}),
			host("vnet1", "tap", "fe:54:00:00:00:02", "virbr9", hostnet.Stats{RxBytes: 200}),
			host("vnet2", "tap", "fe:11:22:33:44:55", "ntbr0", hostnet.Stats{}), // not vm2's
			host("vnet3", "tap", "fe:54:00:00:00:05", "", hostnet.Stats{}),      // on OVS (userspace)
			host("ovs-netdev", "tap", "aa:00:00:00:00:01", "", hostnet.Stats{}),
		},
	}
	view := &libvirtview.View{
		Domains: []libvirtview.Domain{
			{Name: "vm1", UUID: "11111111-1111-1111-1111-111111111111", ID: 1, State: "running", Type: "qemu", NICs: []libvirtview.NIC{
				{Type: "bridge", MAC: "52:54:00:00:00:01", Target: "vnet0", Bridge: "ntbr0", Model: "virtio", Alias: "net0"},
				{Type: "network", MAC: "52:54:00:00:00:02", Target: "vnet1", Bridge: "virbr9", Network: "ntnet", Alias: "net1"},
			}},
			{Name: "vm2", UUID: "22222222-2222-2222-2222-222222222222", ID: 2, State: "running", Type: "qemu", NICs: []libvirtview.NIC{
				{Type: "hostdev", MAC: "52:54:00:00:00:03", Alias: "hostdev0"},
				{Type: "bridge", MAC: "52:54:00:00:00:04", Target: "vnet2", Bridge: "ntbr0"},
			}},
			{Name: "vm3", UUID: "33333333-3333-3333-3333-333333333333", State: "shutoff", Type: "qemu", NICs: []libvirtview.NIC{
				{Type: "bridge", MAC: "52:54:00:00:00:06", Bridge: "ntbr0"},
			}},
			{Name: "vm4", UUID: "44444444-4444-4444-4444-444444444444", ID: 4, State: "running", Type: "qemu", NICs: []libvirtview.NIC{
				{Type: "bridge", MAC: "52:54:00:00:00:05", Target: "vnet3", Bridge: "ovsbr1", VirtualPort: "openvswitch", InterfaceID: "abc"},
			}},
		},
		Networks: []libvirtview.Network{
			{Name: "ntnet", UUID: "99999999-9999-9999-9999-999999999999", Bridge: "virbr9", ForwardMode: "isolated", Active: true,
				Addresses: []string{"198.18.77.1/24"},
				Leases:    []libvirtview.Lease{{MAC: "52:54:00:00:00:02", IP: "198.18.77.10", Prefix: 24}}},
		},
	}
	return snap, view
}

func TestVMAttachments(t *testing.T) {
	snap, view := libvirtFixture()
	got := map[string][2]string{} // domain/nic key → interface, bridge
	for _, a := range VMAttachments(snap, view) {
		got[a.Domain.Name+"/"+a.NIC.Key()] = [2]string{a.Interface, a.Bridge}
	}
	want := map[string][2]string{
		"vm1/vnet0":             {"vnet0", "ntbr0"},
		"vm1/vnet1":             {"vnet1", "virbr9"},
		"vm2/hostdev0":          {"", ""},
		"vm2/vnet2":             {"", "ntbr0"}, // the kernel's vnet2 has another MAC
		"vm3/52:54:00:00:00:06": {"", "ntbr0"},
		"vm4/vnet3":             {"vnet3", "ovsbr1"}, // no kernel master: libvirt's word
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("attachments\n got %v\nwant %v", got, want)
	}
}

func TestBuildWithLibvirt(t *testing.T) {
	snap, view := libvirtFixture()
	g := Build(snap, Views{Libvirt: view})
	edges := map[string]bool{}
	for _, e := range g.Edges {
		edges[e.Kind+" "+e.Source+" "+e.Target] = true
	}
	vm1, vm2, vm4 := VMID(view.Domains[0].UUID), VMID(view.Domains[1].UUID), VMID(view.Domains[3].UUID)
	for _, want := range []string{
		"vm_nic " + vm1 + " if:host/vnet0",
		"vm_nic " + vm1 + " if:host/vnet1",
		"member if:host/vnet0 if:host/ntbr0",
		"vm_network " + vm1 + " " + LibvirtNetworkID(view.Networks[0].UUID),
		"backs " + LibvirtNetworkID(view.Networks[0].UUID) + " if:host/virbr9",
		"vm_nic " + vm2 + " " + VMNICID(view.Domains[1].UUID, "hostdev0"),
		"vm_nic " + vm4 + " if:host/vnet3",
	} {
		if !edges[want] {
			t.Errorf("missing edge %s", want)
		}
	}
	for e := range edges {
		if strings.Contains(e, "vnet2") && strings.HasPrefix(e, "vm_nic") {
			t.Errorf("edge to a tap that is not the VM's: %s", e)
		}
	}
	ids := map[string]string{}
	for _, n := range g.Nodes {
		ids[n.ID] = n.Kind
	}
	if ids[VMID(view.Domains[2].UUID)] != KindVM || ids[vm1] != KindVM {
		t.Errorf("VM nodes missing (inactive ones included): %v", ids)
	}
	for _, e := range g.Edges { // no edge dangles
		if ids[e.Source] == "" || ids[e.Target] == "" {
			t.Errorf("dangling edge %+v", e)
		}
	}
	var text strings.Builder
	if err := g.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"vm vm1 [qemu VM (running)]", "vnet0 [tap", "→ bridge ntbr0", "libvirt network ntnet", "VMs: vm1"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

func TestRolesWithLibvirt(t *testing.T) {
	snap, view := libvirtFixture()
	with := Roles(snap, Views{Libvirt: view})
	for name, want := range map[string]bool{"vnet0": true, "vnet1": true, "vnet3": true, "vnet2": false, "ovs-netdev": false} {
		if got := slices.Contains(with[name], RoleVMTap); got != want {
			t.Errorf("with libvirt: %s vm-tap = %v, want %v (%v)", name, got, want, with[name])
		}
	}
	without := Roles(snap, Views{})
	for _, name := range []string{"vnet0", "vnet2", "ovs-netdev"} {
		if !slices.Contains(without[name], RoleVMTap) {
			t.Errorf("without libvirt every tap is a VM's: %s has %v", name, without[name])
		}
	}
}

func TestNamesWithLibvirt(t *testing.T) {
	snap, view := libvirtFixture()
	ix := Names(snap, Views{Libvirt: view})
	for ip, want := range map[string]string{
		"198.18.77.10": "vm1",           // DHCP lease of vm1's guest MAC
		"198.18.77.1":  "network/ntnet", // the network's own address
		"198.18.77.99": "network/ntnet", // elsewhere in its subnet
		"192.0.2.7":    "",
	} {
		if got := ix.IP(ip); got != want {
			t.Errorf("IP(%s) = %q, want %q", ip, got, want)
		}
	}
	arp := ix.WithARP(map[netip.Addr]string{
		netip.MustParseAddr("192.0.2.7"):    "52:54:00:00:00:01", // vm1's first NIC, static address
		netip.MustParseAddr("198.18.77.10"): "52:54:00:00:00:04", // a lease already names it
	})
	if got := arp.IP("192.0.2.7"); got != "vm1" {
		t.Errorf("ARP-learned address: %q, want vm1", got)
	}
	if got := arp.IP("198.18.77.10"); got != "vm1" {
		t.Errorf("ARP must not override a lease: %q", got)
	}
	if ix.IP("192.0.2.7") != "" {
		t.Error("WithARP changed the original index")
	}
}
