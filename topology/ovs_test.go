package topology

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/ovsview"
)

func ovsFixture() (*hostnet.Snapshot, Views) {
	snap := &hostnet.Snapshot{
		Namespaces: []hostnet.Namespace{{ID: hostnet.HostID, Kind: hostnet.KindHost}},
		Links: []hostnet.Link{
			{Netns: "host", Name: "ovs-netdev", Kind: "tap"},
			{Netns: "host", Name: "br-o", Kind: "tap"},
			{Netns: "host", Name: "vnet3", Kind: "tap"},
			{Netns: "host", Name: "v-o", Kind: "veth"},
			{Netns: "host", Name: "tap-lone", Kind: "tap"},
		},
	}
	iface := func(name, typ string) ovsview.Interface { return ovsview.Interface{Name: name, Type: typ} }
	ov := &ovsview.View{Bridges: []ovsview.Bridge{
		{Name: "br-o", DatapathType: "netdev", Ports: []ovsview.Port{
			{Name: "br-o", Tag: -1, Interfaces: []ovsview.Interface{iface("br-o", "internal")}},
			{Name: "p-a", Tag: -1, Interfaces: []ovsview.Interface{{Name: "p-a", Type: "patch", Peer: "p-b"}}},
			{Name: "v-o", Tag: 7, Interfaces: []ovsview.Interface{iface("v-o", "system")}},
			{Name: "vnet3", Tag: -1, Interfaces: []ovsview.Interface{iface("vnet3", "system")}},
			{Name: "vx", Tag: -1, Interfaces: []ovsview.Interface{{Name: "vx", Type: "vxlan", RemoteIP: "192.0.2.7", Key: "9"}}},
		}},
		{Name: "br-p", DatapathType: "netdev", Ports: []ovsview.Port{
			{Name: "p-b", Tag: -1, Interfaces: []ovsview.Interface{{Name: "p-b", Type: "patch", Peer: "p-a"}}},
			{Name: "p-x", Tag: -1, Interfaces: []ovsview.Interface{{Name: "p-x", Type: "patch", Peer: "no-such-peer"}}},
		}},
	}}
	return snap, Views{OVS: ov}
}

func TestOVSRolesAndKinds(t *testing.T) {
	snap, views := ovsFixture()
	roles := Roles(snap, views)
	for name, want := range map[string][]string{
		"v-o":        {RoleAll, RoleOVSPort},
		"vnet3":      {RoleAll, RoleOVSPort, RoleVMTap}, // no libvirt view: a tap is a VM's
		"br-o":       {RoleAll, RoleOVSPort},            // internal port: not a VM tap
		"ovs-netdev": {RoleAll},
		"tap-lone":   {RoleAll, RoleVMTap},
	} {
		got := slices.Sorted(slices.Values(roles[name]))
		if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("roles of %s = %v, want %v", name, got, want)
		}
	}
	g := Build(snap, views)
	kinds := map[string]string{}
	for _, n := range g.Nodes {
		kinds[n.ID] = n.Kind
	}
	for id, want := range map[string]string{
		InterfaceID("host", "ovs-netdev"): KindOVSDatapath,
		InterfaceID("host", "br-o"):       KindOVSInternal,
		InterfaceID("host", "vnet3"):      "tap",
		OVSInterfaceID("vx"):              KindOVSInterface,
		TunnelEndpointID("192.0.2.7"):     KindTunnelEndpoint,
		OVSBridgeID("br-p"):               KindOVSBridge,
	} {
		if kinds[id] != want {
			t.Errorf("node %s kind %q, want %q", id, kinds[id], want)
		}
	}
	edges := map[string]bool{}
	for _, e := range g.Edges {
		edges[e.Kind+" "+e.Source+" "+e.Target] = true
	}
	for _, want := range []string{
		"ovs_patch ovsif:p-a ovsif:p-b",
		"ovs_interface ovsport:br-o/v-o if:host/v-o", // the kernel link's own node
		"ovs_tunnel ovsif:vx tunnel:192.0.2.7",
		"ovs_port ovsbr:br-p ovsport:br-p/p-x",
	} {
		if !edges[want] {
			t.Errorf("no edge %q", want)
		}
	}
	for e := range edges {
		if strings.HasPrefix(e, "ovs_patch") && strings.Contains(e, "p-x") {
			t.Errorf("dangling patch edge %q", e)
		}
	}
	var text bytes.Buffer
	if err := g.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ovs bridge br-o", "port p-a [OVS port]: p-a [patch OVS interface → p-b] ⇄ patch to bridge br-p",
		"port v-o [OVS port, vlan 7]", "⇢ tunnel to 192.0.2.7"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	var dot bytes.Buffer
	if err := g.WriteDOT(&dot); err != nil || !strings.Contains(dot.String(), `"ovsif:p-a" -> "ovsif:p-b" [id="ovs_patch:ovsif:p-a--ovsif:p-b", class="ovs_patch"`) {
		t.Errorf("dot (%v):\n%s", err, dot.String())
	}
}

// Above RichLabelNodes the DOT has plain titles (the subtitle as tooltip):
// Graphviz lays a large host out in about two thirds of the time.
func TestLargeGraphPlainLabels(t *testing.T) {
	small := &Graph{Nodes: []Node{{ID: "if:host/a", Kind: "veth", Title: "a", Subtitle: "veth"}}}
	large := &Graph{}
	for i := range RichLabelNodes + 1 {
		large.Nodes = append(large.Nodes, Node{ID: "if:host/n" + strconv.Itoa(i), Kind: "veth", Title: "n" + strconv.Itoa(i), Subtitle: "veth"})
	}
	var s, l bytes.Buffer
	if err := small.WriteDOT(&s); err != nil {
		t.Fatal(err)
	}
	if err := large.WriteDOT(&l); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.String(), "<b>a</b>") {
		t.Errorf("small graph without a rich label:\n%s", s.String())
	}
	if strings.Contains(l.String(), "<b>") || !strings.Contains(l.String(), `label="n7", tooltip="veth"`) {
		t.Errorf("large graph without plain labels:\n%s", testTail(l.String()))
	}
}

func testTail(s string) string {
	if len(s) > 600 {
		return s[:600]
	}
	return s
}
