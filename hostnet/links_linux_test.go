//go:build linux

package hostnet

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

func attrs(name string, index int) netlink.LinkAttrs {
	a := netlink.NewLinkAttrs()
	a.Name, a.Index = name, index
	return a
}

func TestLinkKind(t *testing.T) {
	lo := attrs("lo", 1)
	lo.Flags = net.FlagUp | net.FlagLoopback
	for _, tc := range []struct {
		link netlink.Link
		want string
	}{
		{&netlink.Device{LinkAttrs: lo}, "loopback"},
		{&netlink.Device{LinkAttrs: attrs("eth0", 2)}, "physical"},
		{&netlink.Veth{LinkAttrs: attrs("v", 3)}, "veth"},
		{&netlink.Bridge{LinkAttrs: attrs("br0", 4)}, "bridge"},
		{&netlink.Tuntap{LinkAttrs: attrs("tap0", 5), Mode: netlink.TUNTAP_MODE_TAP}, "tap"},
		{&netlink.Tuntap{LinkAttrs: attrs("tun0", 6), Mode: netlink.TUNTAP_MODE_TUN}, "tun"},
		{&netlink.Tuntap{LinkAttrs: attrs("tunx", 7)}, "tuntap"},
		{&netlink.Vxlan{LinkAttrs: attrs("vx", 8)}, "vxlan"},
		{&netlink.Vlan{LinkAttrs: attrs("eth0.10", 9)}, "vlan"},
		{&netlink.Macvlan{LinkAttrs: attrs("mv", 10)}, "macvlan"},
		{&netlink.Macvtap{Macvlan: netlink.Macvlan{LinkAttrs: attrs("mvt", 11)}}, "macvtap"},
		{&netlink.IPVlan{LinkAttrs: attrs("ipv", 12)}, "ipvlan"},
		{&netlink.Dummy{LinkAttrs: attrs("d", 13)}, "dummy"},
		{&netlink.Bond{LinkAttrs: attrs("bond0", 14)}, "bond"},
		{&netlink.GenericLink{LinkAttrs: attrs("ovs-system", 15), LinkType: "openvswitch"}, "openvswitch"},
		{&netlink.Wireguard{LinkAttrs: attrs("wg0", 16)}, "wireguard"},
		{&netlink.Iptun{LinkAttrs: attrs("tunl0", 17)}, "ipip"},
	} {
		if got := linkKind(tc.link); got != tc.want {
			t.Errorf("linkKind(%s %T) = %q, want %q", tc.link.Attrs().Name, tc.link, got, tc.want)
		}
	}
}

func TestOperState(t *testing.T) {
	want := []string{"unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up", "unknown"}
	for i, w := range want {
		if got := operState(uint8(i)); got != w {
			t.Errorf("operState(%d) = %q, want %q", i, got, w)
		}
	}
	// Our names must agree with vishvananda's numbering.
	if operState(uint8(netlink.OperLowerLayerDown)) != "lowerlayerdown" || operState(uint8(netlink.OperUp)) != "up" {
		t.Error("operState disagrees with netlink.LinkOperState")
	}
}

func TestBuildRecs(t *testing.T) {
	mac, _ := net.ParseMAC("02:42:AC:11:00:02")
	br := attrs("br0", 4)
	br.HardwareAddr = mac
	br.MTU = 1500
	br.OperState = netlink.OperUp
	port := attrs("vethA", 5)
	port.MasterIndex = 4
	port.ParentIndex = 2 // IFLA_LINK: peer ifindex
	port.NetNsID = 3     // peer lives in netnsid 3
	port.OperState = netlink.OperLowerLayerDown
	port.Statistics = &netlink.LinkStatistics{RxBytes: 1, RxPackets: 2, RxErrors: 3, RxDropped: 4, TxBytes: 5, TxPackets: 6, TxErrors: 7, TxDropped: 8}
	vx := attrs("vx0", 6)
	vlan := attrs("br0.7", 7)
	vlan.ParentIndex = 4
	lo := attrs("lo", 1)
	lo.Flags = net.FlagLoopback
	links := []netlink.Link{
		&netlink.Device{LinkAttrs: lo},
		&netlink.Bridge{LinkAttrs: br},
		&netlink.Veth{LinkAttrs: port},
		&netlink.Vxlan{LinkAttrs: vx, VtepDevIndex: 4},
		&netlink.Vlan{LinkAttrs: vlan, VlanId: 7},
	}
	addrs := []netlink.Addr{
		{LinkIndex: 4, IPNet: &net.IPNet{IP: net.IP{172, 17, 0, 1}, Mask: net.CIDRMask(16, 32)}},
		{LinkIndex: 4, IPNet: &net.IPNet{IP: net.ParseIP("fd00::1"), Mask: net.CIDRMask(64, 128)}},
		{LinkIndex: 1, IPNet: &net.IPNet{IP: net.IP{127, 0, 0, 1}, Mask: net.CIDRMask(8, 32)}},
		{LinkIndex: 99, IPNet: &net.IPNet{IP: net.IP{10, 0, 0, 1}, Mask: net.CIDRMask(8, 32)}}, // vanished link
		{LinkIndex: 4},
	}
	recs := buildRecs("named:a", links, addrs)
	if len(recs) != 5 {
		t.Fatalf("%d records", len(recs))
	}
	byName := map[string]linkRec{}
	for _, r := range recs {
		if r.Netns != "named:a" {
			t.Errorf("%s: netns %q", r.Name, r.Netns)
		}
		byName[r.Name] = r
	}
	b := byName["br0"]
	if b.Kind != "bridge" || b.MAC != "02:42:ac:11:00:02" || b.MTU != 1500 || b.OperState != "up" {
		t.Errorf("br0 = %+v", b.Link)
	}
	wantAddrs := []Addr{
		{netip.MustParsePrefix("172.17.0.1/16"), "inet"},
		{netip.MustParsePrefix("fd00::1/64"), "inet6"},
	}
	if !slices.Equal(b.Addrs, wantAddrs) {
		t.Errorf("br0 addrs = %v, want %v", b.Addrs, wantAddrs)
	}
	p := byName["vethA"]
	if p.Master != "br0" || p.MasterKind != "bridge" || p.PeerIndex != 2 || p.ParentIndex != 0 || p.linkNsid != 3 ||
		p.OperState != "lowerlayerdown" || p.MAC != "" {
		t.Errorf("vethA = %+v nsid %d", p.Link, p.linkNsid)
	}
	if want := (Stats{1, 2, 3, 4, 5, 6, 7, 8}); p.Stats != want {
		t.Errorf("vethA stats = %+v, want %+v", p.Stats, want)
	}
	if v := byName["vx0"]; v.ParentIndex != 4 || v.Kind != "vxlan" {
		t.Errorf("vx0 = %+v", v.Link)
	}
	if v := byName["br0.7"]; v.ParentIndex != 4 || v.Kind != "vlan" || v.linkNsid != -1 {
		t.Errorf("br0.7 = %+v", v.Link)
	}
	if l := byName["lo"]; l.Kind != "loopback" || len(l.Addrs) != 1 || l.Addrs[0].Family != "inet" {
		t.Errorf("lo = %+v", l.Link)
	}
	// Parents in the same namespace get their names once resolved.
	tb := newLinkTable(recs)
	tb.resolvePeers(nil)
	for _, r := range tb.recs {
		if (r.Name == "vx0" || r.Name == "br0.7") && (r.Parent != "br0" || r.ParentNetns != "named:a") {
			t.Errorf("%s parent = %q in %q", r.Name, r.Parent, r.ParentNetns)
		}
	}
}

func TestHasBridgePorts(t *testing.T) {
	if hasBridgePorts([]linkRec{{Link: Link{MasterKind: "bond"}}}) {
		t.Error("bond slave counted as bridge port")
	}
	if !hasBridgePorts([]linkRec{{}, {Link: Link{MasterKind: "bridge"}}}) {
		t.Error("bridge port not found")
	}
}
