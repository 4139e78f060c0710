package collector

import (
	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/libvirtview"
	"github.com/tangfeixiong/nta/ovsview"
)

// fakeOVS is an OVSSource answering with a literal view.
type fakeOVS struct {
	view ovsview.View
	err  error
}

func (f fakeOVS) View() (ovsview.View, error) { return f.view, f.err }

// ovsHost is a host wired with Open vSwitch (userspace datapath), as the
// e2e lab builds it: two bridges joined by a patch pair, a VXLAN tunnel, a
// container's veth added the ovs-docker way (its peer in the container's
// namespace), a VM whose tap is an OVS port (libvirt virtualport
// openvswitch), a bridge internal port, and an interface OVS could not add.
func ovsHost() (*hostnet.Snapshot, libvirtview.View, ovsview.View) {
	ctrNS := hostnet.Namespace{ID: "ctr1", Kind: hostnet.KindDocker, Inode: 4026532900, Name: "ctr1"}
	snap := &hostnet.Snapshot{
		Namespaces: []hostnet.Namespace{hostNS, ctrNS},
		Links: []hostnet.Link{hostLo, hostEth0,
			{Netns: "host", Name: "ovs-netdev", Index: 40, Kind: "tap", MAC: "0e:00:00:00:00:40", MTU: 1500, OperState: "down"},
			{Netns: "host", Name: "ntovs0", Index: 41, Kind: "tap", MAC: "0e:00:00:00:00:41", MTU: 1500, OperState: "unknown"},
			{Netns: "host", Name: "ntovs1", Index: 42, Kind: "tap", MAC: "0e:00:00:00:00:42", MTU: 1500, OperState: "unknown"},
			{Netns: "host", Name: "a1b2c3_l", Index: 43, Kind: "veth", MAC: "0e:00:00:00:00:43", MTU: 1500, OperState: "up",
				PeerName: "eth1", PeerNetns: "ctr1", PeerIndex: 2},
			{Netns: "ctr1", Name: "eth1", Index: 2, Kind: "veth", MAC: "0e:00:00:00:01:02", MTU: 1500, OperState: "up",
				PeerName: "a1b2c3_l", PeerNetns: "host", PeerIndex: 43, Addrs: addrs("198.18.90.2/24")},
			{Netns: "host", Name: "vnet7", Index: 44, Kind: "tap", MAC: "fe:54:00:0d:00:01", MTU: 1500, OperState: "unknown"},
		},
	}
	lv := libvirtview.View{Domains: []libvirtview.Domain{
		{Name: "vm-ovs", UUID: "8b3c4d5e-6f70-4a81-9c0d-1e2f3a4b5c6d", ID: 3, State: "running", Type: "qemu", NICs: []libvirtview.NIC{
			{Type: "bridge", MAC: "52:54:00:0d:00:01", Target: "vnet7", Bridge: "ntovs1", Model: "virtio", Alias: "net0",
				VirtualPort: "openvswitch", InterfaceID: "4d2f0a6e-0000-4000-8000-000000000007"},
		}},
	}}
	stats := ovsview.Stats{RxBytes: 1960, RxPackets: 20, TxBytes: 2058, TxPackets: 21, TxDropped: 1}
	ov := ovsview.View{SystemID: "863c69b5-7b30-4bca-978a-82eea00ca7e9", Version: "3.1.0", DBVersion: "8.3.1", Bridges: []ovsview.Bridge{
		{UUID: "b0", Name: "ntovs0", DatapathType: "netdev", FailMode: "secure", Ports: []ovsview.Port{
			{Name: "a1b2c3_l", Tag: 42, Interfaces: []ovsview.Interface{{Name: "a1b2c3_l", Type: "system", OFPort: 2, MAC: "0e:00:00:00:00:43",
				AdminState: "up", LinkState: "up", ContainerID: "ctr1", ContainerIface: "eth1", Stats: stats, HasStats: true}}},
			{Name: "ntovs0", Tag: -1, Interfaces: []ovsview.Interface{{Name: "ntovs0", Type: "internal", OFPort: 65534, MAC: "0e:00:00:00:00:41",
				AdminState: "up", LinkState: "up", HasStats: true}}},
			{Name: "ntovs-gone", Tag: -1, Interfaces: []ovsview.Interface{{Name: "ntovs-gone", Type: "system", OFPort: -1,
				Error: "could not open network device ntovs-gone (No such device)"}}},
			{Name: "ntp0", Tag: -1, Interfaces: []ovsview.Interface{{Name: "ntp0", Type: "patch", OFPort: 1, Peer: "ntp1",
				AdminState: "up", LinkState: "up"}}},
		}},
		{UUID: "b1", Name: "ntovs1", DatapathType: "netdev", Controllers: []ovsview.Controller{{Target: "tcp:192.0.2.9:6653"}}, Ports: []ovsview.Port{
			{Name: "bond0", Tag: -1, BondMode: "balance-slb", Interfaces: []ovsview.Interface{
				{Name: "ntb0", Type: "internal", OFPort: 5, AdminState: "down", LinkState: "down", HasStats: true},
				{Name: "ntb1", Type: "internal", OFPort: 6, AdminState: "down", LinkState: "down", HasStats: true},
			}},
			{Name: "ntovs1", Tag: -1, Interfaces: []ovsview.Interface{{Name: "ntovs1", Type: "internal", OFPort: 65534, HasStats: true}}},
			{Name: "ntp1", Tag: -1, Interfaces: []ovsview.Interface{{Name: "ntp1", Type: "patch", OFPort: 1, Peer: "ntp0"}}},
			{Name: "ntvx", Tag: -1, Interfaces: []ovsview.Interface{{Name: "ntvx", Type: "vxlan", OFPort: 2, RemoteIP: "192.0.2.50", Key: "5001",
				DstPort: "4789", TunnelEgress: "eth0", HasStats: true, Stats: ovsview.Stats{TxPackets: 3, TxBytes: 294}}}},
			{Name: "vnet7", Tag: -1, Trunks: []int{10, 20}, Interfaces: []ovsview.Interface{{Name: "vnet7", Type: "system", OFPort: 3,
				AttachedMAC: "52:54:00:0d:00:01", IfaceID: "4d2f0a6e-0000-4000-8000-000000000007", VMID: "8b3c4d5e-6f70-4a81-9c0d-1e2f3a4b5c6d",
				HasStats: true, Stats: ovsview.Stats{RxBytes: 342, RxPackets: 1}}}},
		}},
	}}
	return snap, lv, ov
}
