package topology

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/hostnet"
)

// fixture is the seed notes' lab: docker0 with a container, two bridges
// joined by a veth pair, a named namespace on br0.
func fixture() (*hostnet.Snapshot, *dockerview.View) {
	snap := &hostnet.Snapshot{
		Namespaces: []hostnet.Namespace{
			{ID: "host", Kind: "host"},
			{ID: "docker:abc", Name: "abc", Kind: "docker", Path: "/var/run/docker/netns/abc"},
			{ID: "named:blue", Name: "blue", Kind: "named"},
		},
		Links: []hostnet.Link{
			{Netns: "host", Name: "lo", Index: 1, Kind: "loopback"},
			{Netns: "host", Name: "docker0", Index: 3, Kind: "bridge", Addrs: []hostnet.Addr{{Prefix: netip.MustParsePrefix("172.17.0.1/16"), Family: "inet"}}},
			{Netns: "host", Name: "vethc1", Index: 7, Kind: "veth", Master: "docker0", MasterKind: "bridge", PeerNetns: "docker:abc", PeerName: "eth0", PeerIndex: 2},
			{Netns: "host", Name: "br0", Index: 10, Kind: "bridge"},
			{Netns: "host", Name: "br1", Index: 11, Kind: "bridge"},
			{Netns: "host", Name: "veth0", Index: 12, Kind: "veth", Master: "br0", MasterKind: "bridge", PeerNetns: "host", PeerName: "veth1"},
			{Netns: "host", Name: "veth1", Index: 13, Kind: "veth", Master: "br1", MasterKind: "bridge", PeerNetns: "host", PeerName: "veth0"},
			{Netns: "host", Name: "blueh", Index: 14, Kind: "veth", Master: "br0", MasterKind: "bridge", PeerNetns: "named:blue", PeerName: "eth0"},
			{Netns: "host", Name: "vlan5", Index: 15, Kind: "vlan", Parent: "br1", ParentNetns: "host"},
			{Netns: "docker:abc", Name: "lo", Index: 1, Kind: "loopback"},
			{Netns: "docker:abc", Name: "eth0", Index: 2, Kind: "veth", MAC: "02:42:ac:11:00:02", PeerNetns: "host", PeerName: "vethc1",
				Stats: hostnet.Stats{RxBytes: 100, TxBytes: 200}},
			{Netns: "named:blue", Name: "eth0", Index: 2, Kind: "veth", PeerNetns: "host", PeerName: "blueh"},
		},
	}
	view := &dockerview.View{
		Networks: []dockerview.Network{{ID: "n1bridge0000000", Name: "bridge", Driver: "bridge", Bridge: "docker0", Subnets: []string{"172.17.0.0/16"}}},
		Containers: []dockerview.Container{
			{ID: "c1c1c1c1c1c1c1c1", Name: "web", Image: "nginx", State: "running", NetworkMode: "bridge", SandboxKey: "/var/run/docker/netns/abc",
				Endpoints: []dockerview.Endpoint{{NetworkID: "n1bridge0000000", Network: "bridge", IPv4: "172.17.0.2", MAC: "02:42:AC:11:00:02"}}},
			{ID: "c2c2c2c2c2c2c2c2", Name: "sidecar", State: "running", NetworkMode: "container:c1c1c1c1c1c1c1c1"},
			{ID: "c3c3c3c3c3c3c3c3", Name: "hosty", State: "running", NetworkMode: "host"},
			{ID: "c4c4c4c4c4c4c4c4", Name: "stopped", State: "exited", NetworkMode: "bridge"},
		},
	}
	return snap, view
}

func hasEdge(g *Graph, kind, src, dst string) bool {
	for _, e := range g.Edges {
		if e.Kind == kind && e.Source == src && e.Target == dst {
			return true
		}
	}
	return false
}

func TestBuildEdges(t *testing.T) {
	snap, view := fixture()
	g := Build(snap, Views{Docker: view})
	for _, c := range []struct{ kind, src, dst string }{
		{EdgeMember, "if:host/vethc1", "if:host/docker0"},
		{EdgeVeth, "if:docker:abc/eth0", "if:host/vethc1"},
		{EdgeVeth, "if:host/veth0", "if:host/veth1"},
		{EdgeVethLink, "if:host/br0", "if:host/br1"},
		{EdgeNetns, "if:docker:abc/eth0", "netns:docker:abc"},
		{EdgeSandbox, "container:c1c1c1c1c1c1", "netns:docker:abc"},
		{EdgeSandbox, "container:c2c2c2c2c2c2", "netns:docker:abc"},
		{EdgeBacks, "dockernet:n1bridge0000", "if:host/docker0"},
		{EdgeEndpoint, "container:c1c1c1c1c1c1", "dockernet:n1bridge0000"},
		{EdgeParent, "if:host/vlan5", "if:host/br1"},
	} {
		if !hasEdge(g, c.kind, c.src, c.dst) {
			t.Errorf("missing edge %s %s -> %s", c.kind, c.src, c.dst)
		}
	}
	// One edge per veth pair, never both directions.
	if hasEdge(g, EdgeVeth, "if:host/vethc1", "if:docker:abc/eth0") || hasEdge(g, EdgeVeth, "if:host/veth1", "if:host/veth0") {
		t.Error("veth pair exported twice")
	}
	// Loopbacks are not nodes; no edge dangles.
	ids := map[string]bool{}
	for _, n := range g.Nodes {
		ids[n.ID] = true
		if n.Kind == "loopback" {
			t.Errorf("loopback node %s", n.ID)
		}
	}
	for _, e := range g.Edges {
		if !ids[e.Source] || !ids[e.Target] {
			t.Errorf("dangling edge %+v", e)
		}
	}
	if hasEdge(g, EdgeSandbox, "container:c3c3c3c3c3c3", "netns:host") {
		t.Error("host-network container linked to a host netns node")
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	snap, view := fixture()
	var a, b bytes.Buffer
	_ = Build(snap, Views{Docker: view}).WriteJSON(&a)
	// Reverse input order: output must not change.
	for i, j := 0, len(snap.Links)-1; i < j; i, j = i+1, j-1 {
		snap.Links[i], snap.Links[j] = snap.Links[j], snap.Links[i]
	}
	_ = Build(snap, Views{Docker: view}).WriteJSON(&b)
	if a.String() != b.String() {
		t.Error("graph depends on input order")
	}
}

func TestAttachments(t *testing.T) {
	snap, view := fixture()
	att := Attachments(snap, view)
	if len(att) != 1 {
		t.Fatalf("got %d attachments, want 1 (only web has endpoints)", len(att))
	}
	a := att[0]
	if a.Netns != "docker:abc" || a.Interface != "eth0" || a.HostNetns != "host" || a.HostInterface != "vethc1" {
		t.Errorf("attachment %+v", a)
	}
	if a.Stats.RxBytes != 100 || a.Stats.TxBytes != 200 {
		t.Errorf("container-side stats not taken from the container's interface: %+v", a.Stats)
	}
	if ns := ContainerNetns(snap, view, &view.Containers[1]); ns != "docker:abc" {
		t.Errorf("container:X mode resolved to %q", ns)
	}
	if ns := ContainerNetns(snap, view, &view.Containers[3]); ns != "" {
		t.Errorf("stopped container resolved to %q", ns)
	}
}

func TestRenderers(t *testing.T) {
	snap, view := fixture()
	g := Build(snap, Views{Docker: view})
	var text, dot bytes.Buffer
	if err := g.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"netns host\n",
		"docker0 [bridge 172.17.0.1/16]",
		"└─ vethc1 [veth] ⇄ eth0 @ docker:abc (container",
		"veth0 [veth] ⇄ veth1 → bridge br1",
		"docker network bridge [bridge network 172.17.0.0/16] → bridge docker0; containers: web",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Index(text.String(), "netns host") > strings.Index(text.String(), "netns docker:abc") {
		t.Error("host namespace not printed first")
	}
	if err := g.WriteDOT(&dot); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dot.String(), "digraph nta {") || !strings.Contains(dot.String(), `"if:host/veth0" -> "if:host/veth1" [id="veth:if:host/veth0--if:host/veth1", class="veth"`) {
		t.Errorf("dot output:\n%s", dot.String())
	}
}

func TestRolesAndNames(t *testing.T) {
	snap, view := fixture()
	snap.Links = append(snap.Links, hostnet.Link{Netns: "host", Name: "vnet0", Kind: "tap"},
		hostnet.Link{Netns: "host", Name: "lo", Kind: "loopback"})
	view.Networks[0].Gateways = []string{"172.17.0.1"}
	r := Roles(snap, Views{Docker: view})
	want := map[string]string{"docker0": "all,bridge,docker-bridge", "br0": "all,bridge", "vethc1": "all,container-veth", "vnet0": "all,vm-tap", "veth0": "all"}
	for name, roles := range want {
		if got := strings.Join(r[name], ","); got != roles {
			t.Errorf("roles of %s = %q, want %q", name, got, roles)
		}
	}
	if len(r["lo"]) != 0 {
		t.Errorf("loopback got roles %v", r["lo"])
	}
	for _, roles := range r {
		if err := ValidateRoles(roles); err != nil {
			t.Errorf("Roles gave a role it does not list: %v", err)
		}
	}
	n := Names(snap, Views{Docker: view})
	if n.IP("172.17.0.9") != "network/bridge" {
		t.Errorf("an unowned address in the bridge subnet: %q", n.IP("172.17.0.9"))
	}
	if n.IP("172.17.0.2") != "web" || n.MAC("02:42:AC:11:00:02") != "web" || n.IP("172.17.0.1") != "network/bridge" || n.IP("10.9.9.9") != "" {
		t.Errorf("names: %q %q %q", n.IP("172.17.0.2"), n.MAC("02:42:AC:11:00:02"), n.IP("172.17.0.1"))
	}
}

// TestRolesWithoutDocker: with no Docker view the naming conventions stand
// in for it; the kernel's kinds still decide bridges and taps.
func TestRolesWithoutDocker(t *testing.T) {
	host := func(name, kind, master string) hostnet.Link {
		l := hostnet.Link{Netns: hostnet.HostID, Name: name, Kind: kind, Master: master}
		if master != "" {
			l.MasterKind = "bridge"
		}
		return l
	}
	snap := &hostnet.Snapshot{Links: []hostnet.Link{
		host("lo", "loopback", ""),
		host("eth0", "physical", ""),
		host("docker0", "bridge", ""),
		host("br-5f2e9c1a7b3d", "bridge", ""),
		host("virbr0", "bridge", ""),
		host("br-notdocker", "bridge", ""),
		host("veth1a2b3c4", "veth", "docker0"),
		host("vethuser", "veth", "br-5f2e9c1a7b3d"),
		host("vethvirt", "veth", "virbr0"),
		host("vethfree", "veth", ""),
		host("vnet12", "tap", "virbr0"),
		host("tun0", "tun", ""),
		host("macvtap3", "macvtap", ""),
		{Netns: "docker:abc", Name: "eth0", Kind: "veth"}, // another namespace: no roles
	}}
	want := map[string][]string{
		"eth0":            {RoleAll},
		"docker0":         {RoleAll, RoleBridge, RoleDockerBridge},
		"br-5f2e9c1a7b3d": {RoleAll, RoleBridge, RoleDockerBridge},
		"virbr0":          {RoleAll, RoleBridge},
		"br-notdocker":    {RoleAll, RoleBridge},
		"veth1a2b3c4":     {RoleAll, RoleContainerVeth},
		"vethuser":        {RoleAll, RoleContainerVeth},
		"vethvirt":        {RoleAll},
		"vethfree":        {RoleAll},
		"vnet12":          {RoleAll, RoleVMTap},
		"tun0":            {RoleAll},
		"macvtap3":        {RoleAll, RoleVMTap},
	}
	if got := Roles(snap, Views{}); !reflect.DeepEqual(got, want) {
		t.Errorf("Roles without Docker:\n got %v\nwant %v", got, want)
	}
	if err := ValidateRoles([]string{"docker-bridges"}); err == nil || !strings.Contains(err.Error(), "docker-bridge,") {
		t.Errorf("unknown role: err = %v, want it to list the known roles", err)
	}
}
