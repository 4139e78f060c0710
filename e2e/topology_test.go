package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// TestDockerLab builds the lab and checks every family of the exporter
// against ip, bridge and docker's own reading of the same state.
func TestDockerLab(t *testing.T) {
	l := newLab(t)
	e := testenv.StartExporter(t)
	// Docker's view is synced in the background: wait for it, and for every
	// lab container, before comparing.
	var m testenv.Metrics
	testenv.Eventually(t, "docker view synced with the lab", 30*time.Second, func() error {
		m = e.Scrape()
		for _, c := range l.containers {
			if len(m.All("nta_docker_container_info", map[string]string{"container": c})) != 1 {
				return fmt.Errorf("container %s not exported yet", c)
			}
		}
		return nil
	})

	// Namespaces to compare: the host, the named one, each lab container's sandbox.
	nsPaths := map[string]string{"host": "", "named:" + labNS: "/var/run/netns/" + labNS}
	for _, c := range l.containers {
		p, id := sandbox(t, c)
		nsPaths[id] = p
	}

	t.Run("interfaces match ip -j -d link in every namespace", func(t *testing.T) {
		for nsID, path := range nsPaths {
			want := ipLinks(t, path)
			got := map[string]testenv.Sample{}
			for _, s := range m.All("nta_interface_info", map[string]string{"netns": nsID}) {
				got[s.Labels["interface"]] = s
			}
			if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
				t.Errorf("netns %s: interfaces: nta %v, ip %v", nsID, g, w)
				continue
			}
			for name, il := range want {
				s := got[name].Labels
				check := map[string][2]string{
					"ifindex":   {s["ifindex"], strconv.Itoa(il.Ifindex)},
					"kind":      {s["kind"], ipKind(il)},
					"mtu":       {s["mtu"], strconv.Itoa(il.MTU)},
					"operstate": {s["operstate"], operstate(il.Operstate)},
					"master":    {s["master"], il.Master},
				}
				switch {
				case il.LinkType == "none": // tun devices have no MAC
				case il.Address == "00:00:00:00:00:00": // lo: nta reports no MAC rather than zeros
					check["mac"] = [2]string{s["mac"], ""}
				default:
					check["mac"] = [2]string{s["mac"], il.Address}
				}
				for k, v := range check {
					if v[0] != v[1] {
						t.Errorf("netns %s interface %s: %s = %q, ip says %q", nsID, name, k, v[0], v[1])
					}
				}
			}
		}
	})

	t.Run("bridge ports match bridge -j link", func(t *testing.T) {
		want := map[string]string{}
		for _, p := range testenv.BridgePorts(t) {
			want[p.Master+"/"+p.Ifname] = p.State
		}
		got := map[string]string{}
		for _, s := range m.All("nta_bridge_port_info", map[string]string{"netns": "host", "master_kind": "bridge"}) {
			got[s.Labels["bridge"]+"/"+s.Labels["interface"]] = s.Labels["stp_state"]
		}
		if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
			t.Fatalf("bridge ports: nta %v, bridge -j link %v", g, w)
		}
		for k, st := range want {
			if got[k] != st {
				t.Errorf("port %s: stp_state %q, bridge says %q", k, got[k], st)
			}
		}
		for _, p := range []string{"nt-br0/nt-v0", "nt-br1/nt-v1", "nt-br0/nt-ns1h"} {
			if _, ok := got[p]; !ok {
				t.Errorf("lab port %s missing", p)
			}
		}
	})

	t.Run("veth peers resolve across namespaces", func(t *testing.T) {
		ids := netnsIDs(t)
		hostLinks := ipLinks(t, "")
		byIndex := map[int]string{}
		for n, l := range hostLinks {
			byIndex[l.Ifindex] = n
		}
		// Host side: same-namespace pairs and pairs into named namespaces.
		for name, il := range hostLinks {
			if ipKind(il) != "veth" {
				continue
			}
			s := m.One(t, "nta_veth_peer_info", map[string]string{"netns": "host", "interface": name}).Labels
			switch {
			case il.LinkNetnsid == nil:
				if s["peer_netns"] != "host" || s["peer_interface"] != il.Link {
					t.Errorf("%s: peer %s/%s, ip says host/%s", name, s["peer_netns"], s["peer_interface"], il.Link)
				}
			case ids[*il.LinkNetnsid] != "":
				if want := "named:" + ids[*il.LinkNetnsid]; s["peer_netns"] != want {
					t.Errorf("%s: peer netns %s, ip says %s", name, s["peer_netns"], want)
				}
			}
		}
		// Container side: eth0's link_index is the host veth's ifindex.
		for _, c := range l.containers {
			path, nsID := sandbox(t, c)
			for name, il := range ipLinks(t, path) {
				if ipKind(il) != "veth" {
					continue
				}
				want := byIndex[il.LinkIndex]
				s := m.One(t, "nta_veth_peer_info", map[string]string{"netns": nsID, "interface": name}).Labels
				if s["peer_netns"] != "host" || s["peer_interface"] != want {
					t.Errorf("%s %s: peer %s/%s, ip says host/%s", c, name, s["peer_netns"], s["peer_interface"], want)
				}
				back := m.One(t, "nta_veth_peer_info", map[string]string{"netns": "host", "interface": want}).Labels
				if back["peer_netns"] != nsID || back["peer_interface"] != name {
					t.Errorf("host %s: peer %s/%s, want %s/%s", want, back["peer_netns"], back["peer_interface"], nsID, name)
				}
			}
		}
	})

	t.Run("docker networks and endpoints match docker network inspect", func(t *testing.T) {
		for _, netName := range []string{"bridge", labNet} {
			var nets []struct {
				ID      string `json:"Id"`
				Driver  string
				Options map[string]string
				IPAM    struct {
					Config []struct{ Subnet, Gateway string }
				}
				Containers map[string]struct {
					Name        string
					MacAddress  string
					IPv4Address string
				}
			}
			jsonOf(t, &nets, "docker", "network", "inspect", netName)
			n := nets[0]
			s := m.One(t, "nta_docker_network_info", map[string]string{"network": netName}).Labels
			bridge := "br-" + n.ID[:12]
			if b := n.Options["com.docker.network.bridge.name"]; b != "" {
				bridge = b
			}
			if s["network_id"] != n.ID || s["driver"] != n.Driver || s["bridge"] != bridge || s["subnet"] != n.IPAM.Config[0].Subnet {
				t.Errorf("network %s: nta %v, docker id=%s driver=%s bridge=%s subnet=%s", netName, s, n.ID, n.Driver, bridge, n.IPAM.Config[0].Subnet)
			}
			if netName == labNet && s["subnet"] != labSubnet {
				t.Errorf("lnmp subnet %q, want %s", s["subnet"], labSubnet)
			}
			// Every container endpoint on the network, and nothing extra.
			want := map[string]string{}
			for id, c := range n.Containers {
				want[id] = c.Name + " " + strings.Split(c.IPv4Address, "/")[0] + " " + c.MacAddress
			}
			got := map[string]string{}
			for _, e := range m.All("nta_docker_endpoint_info", map[string]string{"network": netName}) {
				got[e.Labels["container_id"]] = e.Labels["container"] + " " + e.Labels["ipv4"] + " " + e.Labels["mac"]
			}
			if !slices.Equal(sortedPairs(got), sortedPairs(want)) {
				t.Errorf("network %s endpoints:\n nta    %v\n docker %v", netName, sortedPairs(got), sortedPairs(want))
			}
			// The bridge behind it exists and carries the containers' host veths.
			for _, e := range m.All("nta_docker_endpoint_info", map[string]string{"network": netName}) {
				hv := e.Labels["host_interface"]
				if hv == "" {
					t.Errorf("endpoint %s on %s: no host-side veth", e.Labels["container"], netName)
					continue
				}
				p := m.One(t, "nta_bridge_port_info", map[string]string{"netns": "host", "interface": hv}).Labels
				if p["bridge"] != bridge {
					t.Errorf("%s's veth %s is on %s, want %s", e.Labels["container"], hv, p["bridge"], bridge)
				}
			}
		}
		both := m.All("nta_docker_endpoint_info", map[string]string{"container": "nt-both"})
		if len(both) != 2 {
			t.Errorf("nt-both: %d endpoints, want 2 (bridge + lnmp)", len(both))
		}
	})

	t.Run("host, none and container: network modes", func(t *testing.T) {
		webID := strings.TrimSpace(testenv.Run(t, "docker", "inspect", "-f", "{{.Id}}", "nt-web"))
		_, webNS := sandbox(t, "nt-web")
		_, noneNS := sandbox(t, "nt-none")
		for name, want := range map[string][2]string{
			"nt-hostnet": {"host", "host"},
			"nt-none":    {"none", noneNS},
			"nt-side":    {"container:" + webID, webNS},
		} {
			s := m.One(t, "nta_docker_container_info", map[string]string{"container": name}).Labels
			if s["network_mode"] != want[0] || s["netns"] != want[1] {
				t.Errorf("%s: network_mode %q netns %q, want %q %q", name, s["network_mode"], s["netns"], want[0], want[1])
			}
			if c := m.All("nta_container_network_receive_bytes_total", map[string]string{"container": name}); len(c) != 0 {
				t.Errorf("%s: container traffic series for a container without its own veth: %v", name, c)
			}
		}
		// nt-none's namespace holds only lo, as ip says.
		path, _ := sandbox(t, "nt-none")
		if links := ipLinks(t, path); len(links) != 1 || links["lo"].Ifname != "lo" {
			t.Fatalf("nt-none namespace per ip: %v", links)
		}
		if got := m.All("nta_interface_info", map[string]string{"netns": noneNS}); len(got) != 1 || got[0].Labels["interface"] != "lo" {
			t.Errorf("nt-none namespace per nta: %v", got)
		}
		sideID := strings.TrimSpace(testenv.Run(t, "docker", "inspect", "-f", "{{.Id}}", "nt-side"))
		m.One(t, "nta_edge_info", map[string]string{"kind": "sandbox", "source": "container:" + sideID[:12], "target": "netns:" + webNS})
	})

	t.Run("published ports match docker inspect", func(t *testing.T) {
		var ports map[string][]struct{ HostIp, HostPort string }
		if err := json.Unmarshal([]byte(testenv.Run(t, "docker", "inspect", "-f", "{{json .NetworkSettings.Ports}}", "nt-web")), &ports); err != nil {
			t.Fatal(err)
		}
		var want []string
		for cp, binds := range ports {
			for _, b := range binds {
				port, proto, _ := strings.Cut(cp, "/")
				want = append(want, b.HostIp+":"+b.HostPort+"->"+port+"/"+proto)
			}
		}
		var got []string
		for _, s := range m.All("nta_docker_published_port_info", map[string]string{"container": "nt-web"}) {
			got = append(got, s.Labels["host_ip"]+":"+s.Labels["host_port"]+"->"+s.Labels["container_port"]+"/"+s.Labels["protocol"])
		}
		slices.Sort(want)
		slices.Sort(got)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("published ports: nta %v, docker %v", got, want)
		}
	})

	t.Run("node graph joins bridges, veths, containers and networks", func(t *testing.T) {
		nodes := map[string]bool{}
		for _, s := range m.All("nta_node_info", nil) {
			for _, l := range []string{"id", "title", "subtitle", "kind"} {
				if _, ok := s.Labels[l]; !ok {
					t.Fatalf("node without label %s: %v", l, s.Labels)
				}
			}
			nodes[s.Labels["id"]] = true
		}
		for _, s := range m.All("nta_edge_info", nil) {
			if !nodes[s.Labels["source"]] || !nodes[s.Labels["target"]] {
				t.Errorf("dangling edge %v", s.Labels)
			}
		}
		m.One(t, "nta_edge_info", map[string]string{"kind": "veth_link", "source": "if:host/nt-br0", "target": "if:host/nt-br1"})
		m.One(t, "nta_edge_info", map[string]string{"kind": "member", "source": "if:host/nt-ns1h", "target": "if:host/nt-br0"})
		m.One(t, "nta_edge_info", map[string]string{"kind": "veth", "source": "if:host/nt-ns1h", "target": "if:named:nt-ns1/eth0"})
		_, webNS := sandbox(t, "nt-web")
		id := strings.TrimSpace(testenv.Run(t, "docker", "inspect", "-f", "{{.Id}}", "nt-web"))
		m.One(t, "nta_edge_info", map[string]string{"kind": "sandbox", "source": "container:" + id[:12], "target": "netns:" + webNS})
		// Ids are stable: a second scrape gives the same node set.
		again := map[string]bool{}
		for _, s := range e.Scrape().All("nta_node_info", nil) {
			again[s.Labels["id"]] = true
		}
		if !maps.Equal(nodes, again) {
			t.Errorf("node ids changed between scrapes")
		}
		// ...and so does a second exporter process (ids survive restarts).
		e2 := testenv.StartExporter(t)
		restarted := map[string]bool{}
		testenv.Eventually(t, "second exporter synced with Docker", 30*time.Second, func() error {
			restarted = map[string]bool{}
			for _, s := range e2.Scrape().All("nta_node_info", nil) {
				restarted[s.Labels["id"]] = true
			}
			if !maps.Equal(nodes, restarted) {
				return fmt.Errorf("node ids differ after a restart: %d vs %d ids", len(nodes), len(restarted))
			}
			return nil
		})
	})

	t.Run("promtool check metrics passes", func(t *testing.T) { promtoolCheckMetrics(t, e.Raw()) })

	t.Run("every collector succeeded", func(t *testing.T) {
		for _, s := range m.All("nta_collector_success", nil) {
			if s.Value != 1 {
				t.Errorf("collector %s: success %v", s.Labels["collector"], s.Value)
			}
		}
	})

	t.Run("exact traffic between containers", func(t *testing.T) { labTraffic(t, e) })
	t.Run("containers started and removed while running", func(t *testing.T) { labLifecycle(t, l, e) })

	t.Run("topology command prints the lab", func(t *testing.T) {
		text := stdout(t, testenv.ExporterBinary(t), "topology")
		for _, want := range []string{"nt-br0", "nt-ns1h", "⇄ eth0 @ named:nt-ns1", "nt-v0", "→ bridge nt-br1", "container nt-both", "docker network lnmp"} {
			if !strings.Contains(text, want) {
				t.Errorf("topology text lacks %q:\n%s", want, text)
			}
		}
		var g struct{ Nodes, Edges []map[string]string }
		if err := json.Unmarshal([]byte(stdout(t, testenv.ExporterBinary(t), "topology", "--format=json")), &g); err != nil {
			t.Fatal(err)
		}
		if len(g.Nodes) == 0 || len(g.Edges) == 0 {
			t.Errorf("json graph empty: %d nodes %d edges", len(g.Nodes), len(g.Edges))
		}
		dot := stdout(t, testenv.ExporterBinary(t), "topology", "--format=dot")
		cmd := exec.Command("dot", "-Tplain")
		cmd.Stdin = strings.NewReader(dot)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "nt-br0") {
			t.Errorf("graphviz cannot render the DOT output: %v\n%.500s", err, out)
		}
	})
}

func sortedPairs(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k[:12]+"="+v)
	}
	slices.Sort(out)
	return out
}
