package topoweb

import (
	"fmt"
	"net/netip"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/libvirtview"
	"github.com/tangfeixiong/nta/ovsview"
	"github.com/tangfeixiong/nta/topology"
)

// synthHost is a host with containers alternating between docker0 and a
// user-defined network, VMs with one tap each on virbr0 (a libvirt
// network), an OVS bridge of ovsPorts veth ports plus a patch pair to a
// second OVS bridge and a vxlan tunnel, two Linux bridges joined by a veth
// pair, and the physical NIC. Every link carries counters scaled by scale.
func synthHost(containers, vms, ovsPorts int, scale uint64) (*hostnet.Snapshot, topology.Views) {
	st := func(i int) hostnet.Stats {
		return hostnet.Stats{RxBytes: scale * uint64(1000+i), TxBytes: scale * uint64(2000+i), RxPackets: scale * uint64(10+i), TxPackets: scale * uint64(20+i)}
	}
	pfx := func(s string) []hostnet.Addr {
		return []hostnet.Addr{{Prefix: netip.MustParsePrefix(s), Family: "inet"}}
	}
	snap := &hostnet.Snapshot{Namespaces: []hostnet.Namespace{{ID: "host", Kind: "host"}}}
	add := func(l hostnet.Link) { snap.Links = append(snap.Links, l) }
	add(hostnet.Link{Netns: "host", Name: "eth0", Kind: "physical", Addrs: pfx("192.0.2.10/24"), Stats: st(0)})
	add(hostnet.Link{Netns: "host", Name: "docker0", Kind: "bridge", Addrs: pfx("198.18.0.1/24"), Stats: st(1)})
	add(hostnet.Link{Netns: "host", Name: "br-lnmp0001", Kind: "bridge", Addrs: pfx("198.18.1.1/24"), Stats: st(2)})
	add(hostnet.Link{Netns: "host", Name: "virbr0", Kind: "bridge", Addrs: pfx("198.18.2.1/24"), Stats: st(3)})
	add(hostnet.Link{Netns: "host", Name: "nt-br0", Kind: "bridge", Stats: st(4)})
	add(hostnet.Link{Netns: "host", Name: "nt-br1", Kind: "bridge", Stats: st(5)})
	add(hostnet.Link{Netns: "host", Name: "nt-v0", Kind: "veth", Master: "nt-br0", MasterKind: "bridge", PeerNetns: "host", PeerName: "nt-v1", Stats: st(6)})
	add(hostnet.Link{Netns: "host", Name: "nt-v1", Kind: "veth", Master: "nt-br1", MasterKind: "bridge", PeerNetns: "host", PeerName: "nt-v0", Stats: st(7)})
	view := &dockerview.View{Networks: []dockerview.Network{
		{ID: "bridge000000000000", Name: "bridge", Driver: "bridge", Bridge: "docker0", Subnets: []string{"198.18.0.0/24"}},
		{ID: "lnmp0001000000000000", Name: "lnmp", Driver: "bridge", Bridge: "br-lnmp0001", Subnets: []string{"198.18.1.0/24"}},
	}}
	for i := range containers {
		ns := fmt.Sprintf("docker:sb%04d", i)
		snap.Namespaces = append(snap.Namespaces, hostnet.Namespace{ID: ns, Name: fmt.Sprintf("sb%04d", i), Kind: "docker", Path: "/var/run/docker/netns/" + ns[7:]})
		br, netw, sub := "docker0", "bridge", 0
		if i%2 == 1 {
			br, netw, sub = "br-lnmp0001", "lnmp", 1
		}
		mac := fmt.Sprintf("02:42:c6:12:%02x:%02x", sub, i+2)
		ip := fmt.Sprintf("198.18.%d.%d", sub, i+2)
		host := fmt.Sprintf("veth%04x", i)
		add(hostnet.Link{Netns: ns, Name: "eth0", Kind: "veth", MAC: mac, Addrs: pfx(ip + "/24"), PeerNetns: "host", PeerName: host, Stats: st(100 + i)})
		add(hostnet.Link{Netns: "host", Name: host, Kind: "veth", Master: br, MasterKind: "bridge", PeerNetns: ns, PeerName: "eth0", Stats: st(100 + i)})
		view.Containers = append(view.Containers, dockerview.Container{
			ID: fmt.Sprintf("c%011d%04d", i, i), Name: fmt.Sprintf("app%02d", i), Image: "nta-test/app:1", State: "running", NetworkMode: netw,
			SandboxKey: "/var/run/docker/netns/" + ns[7:],
			Endpoints:  []dockerview.Endpoint{{Network: netw, NetworkID: view.Networks[sub].ID, IPv4: ip, MAC: mac}},
		})
	}
	lv := &libvirtview.View{Networks: []libvirtview.Network{{UUID: "00000000-0000-4000-8000-00000000ffff", Name: "ntnet", Bridge: "virbr0", ForwardMode: "nat", Active: true}}}
	for i := range vms {
		tap := fmt.Sprintf("vnet%d", i)
		mac := fmt.Sprintf("52:54:00:00:00:%02x", i)
		add(hostnet.Link{Netns: "host", Name: tap, Kind: "tap", MAC: "fe" + mac[2:], Master: "virbr0", MasterKind: "bridge", Stats: st(300 + i)})
		lv.Domains = append(lv.Domains, libvirtview.Domain{Name: fmt.Sprintf("vm%02d", i), UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), State: "running", Type: "qemu",
			NICs: []libvirtview.NIC{{Type: "network", MAC: mac, Target: tap, Bridge: "virbr0", Network: "ntnet", Model: "virtio"}}})
	}
	ov := &ovsview.View{Version: "3.1.0"}
	br := ovsview.Bridge{Name: "br-int", DatapathType: "netdev"}
	for i := range ovsPorts {
		name := fmt.Sprintf("ovsv%d", i)
		add(hostnet.Link{Netns: "host", Name: name, Kind: "veth", Stats: st(400 + i)})
		br.Ports = append(br.Ports, ovsview.Port{Name: name, Tag: -1, Interfaces: []ovsview.Interface{{Name: name, Type: "system", OFPort: i + 1, HasStats: true}}})
	}
	br.Ports = append(br.Ports,
		ovsview.Port{Name: "patch-int", Tag: -1, Interfaces: []ovsview.Interface{{Name: "patch-int", Type: "patch", Peer: "patch-ex"}}},
		ovsview.Port{Name: "bond0", Tag: -1, BondMode: "active-backup", Interfaces: []ovsview.Interface{{Name: "bond0a", Type: "dpdk"}, {Name: "bond0b", Type: "dpdk"}}},
		ovsview.Port{Name: "vx0", Tag: -1, Interfaces: []ovsview.Interface{{Name: "vx0", Type: "vxlan", RemoteIP: "192.0.2.99", HasStats: true,
			Stats: ovsview.Stats{RxBytes: scale * 7000, TxBytes: scale * 8000}}}})
	ex := ovsview.Bridge{Name: "br-ex", DatapathType: "netdev", Ports: []ovsview.Port{
		{Name: "patch-ex", Tag: -1, Interfaces: []ovsview.Interface{{Name: "patch-ex", Type: "patch", Peer: "patch-int"}}},
	}}
	ov.Bridges = []ovsview.Bridge{br, ex}
	return snap, topology.Views{Docker: view, Libvirt: lv, OVS: ov}
}
