package collector

import (
	"time"

	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/libvirtview"
)

// libvirtHost is a libvirt host as the e2e libvirt lab builds it: the Linux
// bridge ntlv-br0 with vm-web's tap; the isolated libvirt network ntlv-net
// (bridge ntlvvirbr0, 198.18.77.1/24, DHCP) with vm-db's first tap and a
// lease for it; vm-db's second NIC on ntlv-br0; a hostdev NIC without a tap
// on vm-db; vm-off shut off. A tap's MAC is the guest's with fe first; its
// counters are the guest's mirrored (a tap's transmit is what the guest
// receives).
func libvirtHost() (*hostnet.Snapshot, libvirtview.View) {
	tap := func(name string, idx int, guestMAC, bridge string, bridgeIdx int, s hostnet.Stats) hostnet.Link {
		return hostnet.Link{Netns: "host", Name: name, Index: idx, Kind: "tap", MAC: "fe" + guestMAC[2:], MTU: 1500, OperState: "unknown",
			MasterIndex: bridgeIdx, Master: bridge, MasterKind: "bridge", STPState: "forwarding", Stats: s}
	}
	br0 := hostnet.Link{Netns: "host", Name: "ntlv-br0", Index: 20, Kind: "bridge", MAC: "02:00:5e:00:00:20", MTU: 1500, OperState: "up"}
	virbr := hostnet.Link{Netns: "host", Name: "ntlvvirbr0", Index: 21, Kind: "bridge", MAC: "52:54:00:7a:00:01", MTU: 1500, OperState: "up",
		Addrs: addrs("198.18.77.1/24")}
	snap := &hostnet.Snapshot{
		Namespaces: []hostnet.Namespace{hostNS},
		Links: []hostnet.Link{hostLo, hostEth0, br0, virbr,
			tap("vnet0", 30, "52:54:00:0a:00:01", "ntlv-br0", 20, hostnet.Stats{RxBytes: 3420, RxPackets: 9, TxBytes: 640, TxPackets: 2}),
			tap("vnet1", 31, "52:54:00:0b:00:01", "ntlvvirbr0", 21, hostnet.Stats{RxBytes: 1710, RxPackets: 5, TxBytes: 1180, TxPackets: 3, TxDropped: 1}),
			tap("vnet2", 32, "52:54:00:0b:00:02", "ntlv-br0", 20, hostnet.Stats{RxBytes: 380, RxPackets: 1}),
		},
	}
	view := libvirtview.View{
		Domains: []libvirtview.Domain{
			{Name: "vm-db", UUID: "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b", ID: 2, State: "running", Type: "qemu", NICs: []libvirtview.NIC{
				{Type: "network", MAC: "52:54:00:0b:00:01", Target: "vnet1", Bridge: "ntlvvirbr0", Network: "ntlv-net", Model: "virtio", Alias: "net0"},
				{Type: "bridge", MAC: "52:54:00:0b:00:02", Target: "vnet2", Bridge: "ntlv-br0", Model: "e1000", Alias: "net1"},
				{Type: "hostdev", MAC: "52:54:00:0b:00:03", Alias: "hostdev0"},
			}},
			{Name: "vm-off", UUID: "7a2b3c4d-5e6f-4a70-9b8c-0d1e2f3a4b5c", State: "shutoff", Type: "qemu", NICs: []libvirtview.NIC{
				{Type: "bridge", MAC: "52:54:00:0c:00:01", Bridge: "ntlv-br0", Model: "virtio"},
			}},
			{Name: "vm-web", UUID: "5e0b1a2c-3d4e-4f50-9a6b-8c7d6e5f4a3b", ID: 1, State: "running", Type: "qemu", NICs: []libvirtview.NIC{
				{Type: "bridge", MAC: "52:54:00:0a:00:01", Target: "vnet0", Bridge: "ntlv-br0", Model: "virtio", Alias: "net0",
					VirtualPort: "", InterfaceID: ""},
			}},
		},
		Networks: []libvirtview.Network{
			{Name: "ntlv-net", UUID: "8b3c4d5e-6f70-4b81-8c9d-1e2f3a4b5c6d", Bridge: "ntlvvirbr0", ForwardMode: "isolated", Active: true,
				Addresses: []string{"198.18.77.1/24"}, DHCPRanges: []string{"198.18.77.10-198.18.77.50"},
				Leases: []libvirtview.Lease{{MAC: "52:54:00:0b:00:01", IP: "198.18.77.23", Prefix: 24, Hostname: "vm-db",
					Expiry: time.Unix(1796300000, 0)}}},
		},
		ParseErrors: 1,
	}
	return snap, view
}
