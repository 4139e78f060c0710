package main

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/nodegraph"
)

// The Node Graph panel (grafana/grafana
// public/app/plugins/panel/nodeGraph/utils.ts, getNodeFields and
// getEdgeFields; names in packages/grafana-data/src/utils/nodeGraph.ts)
// reads, case-insensitively, the fields id, title, subtitle, mainstat,
// secondarystat, arc__*, detail__*, color, icon of the nodes frame and id,
// source, target, mainstat, secondarystat, detail__*, color, thickness of
// the edges frame; it takes the first frame with a source field (or named
// "edges") as edges and the first other frame as nodes. A Prometheus query
// has one value column, so each statistic is a query of its own, keyed by
// the node or edge id; a "Join by field" on id (restricted by a frame
// filter to that frame's queries) makes one frame of them, and "Organize
// fields" renames each "Value #refId" column to the field name the panel
// reads. The traffic comes from the counters nta already exports, joined
// to ids in PromQL with label_replace: no extra series in the exporter, at
// the cost of longer queries (see dashboards/README.md).

// nodeStat names a node statistic query.
type nodeStat struct {
	refID, field string
	dir          string // "receive", "transmit" or "" for both
	unit         string // bytes or packets
}

var (
	nodeStats = []nodeStat{
		{"nodes_mainstat", "mainstat", "", "bytes"},
		{"nodes_secondarystat", "secondarystat", "", "packets"},
		{"nodes_arc_receive", "arc__receive", "receive", "bytes"},
		{"nodes_arc_transmit", "arc__transmit", "transmit", "bytes"},
	}
	edgeStats = []nodeStat{
		{"edges_mainstat", "mainstat", "", "bytes"},
		{"edges_secondarystat", "secondarystat", "", "packets"},
	}
)

// rateOf is the per-second rate of a counter family under the instance
// selector, summed over direction dir ("" both) and kept by the labels by.
func rateOf(family, dir, unit, by string, extra ...string) string {
	dirs := []string{"receive", "transmit"}
	if dir != "" {
		dirs = []string{dir}
	}
	sel := strings.Join(append([]string{instanceSel}, extra...), ", ")
	var parts []string
	for _, d := range dirs {
		parts = append(parts, fmt.Sprintf("rate(%s_%s_%s_total{%s}[$__rate_interval])", family, d, unit, sel))
	}
	return fmt.Sprintf("sum by (instance, %s) (%s)", by, strings.Join(parts, " + "))
}

// nodeTraffic is the traffic of every node that has counters, as series
// labelled instance and id (the node id): interfaces (if:NETNS/NAME),
// containers (container:ID12), VMs (vm:UUID), OVS bridges, ports and
// interfaces without a kernel device. Each from its own point of view.
func nodeTraffic(dir, unit string) string {
	parts := []string{
		// if:NETNS/IFNAME from the kernel's counters.
		fmt.Sprintf(`label_replace(label_join(%s, "id", "/", "netns", "interface"), "id", "if:$1", "id", "(.*)")`,
			rateOf("nta_interface", dir, unit, "netns, interface")),
		fmt.Sprintf(`label_replace(%s, "id", "container:$1", "container_id", "(.{12}).*")`,
			rateOf("nta_container_network", dir, unit, "container_id")),
		fmt.Sprintf(`label_replace(%s, "id", "vm:$1", "uuid", "(.*)")`,
			rateOf("nta_vm_network", dir, unit, "uuid")),
		fmt.Sprintf(`label_replace(%s, "id", "ovsbr:$1", "bridge", "(.*)")`,
			rateOf("nta_ovs_interface", dir, unit, "bridge")),
		fmt.Sprintf(`label_replace(label_join(%s, "id", "/", "bridge", "port"), "id", "ovsport:$1", "id", "(.*)")`,
			rateOf("nta_ovs_interface", dir, unit, "bridge, port")),
		fmt.Sprintf(`label_replace(%s, "id", "ovsif:$1", "interface", "(.*)")`,
			rateOf("nta_ovs_interface", dir, unit, "interface")),
		// port:HOST_IP:PORT/PROTO from the NAT'd ingress through it, the
		// id topology.PublishedPortName writes: an IPv6 address in
		// brackets, no address as "*". HOST_IP|PORT|PROTO is rewritten by
		// the one pattern that matches it; the others leave it alone.
		fmt.Sprintf(`label_replace(label_replace(label_replace(label_join(%s, "id", "|", "host_ip", "host_port", "protocol"), `+
			`"id", "port:[$1]:$2/$3", "id", "(.*:.*)\\|(.*)\\|(.*)"), `+
			`"id", "port:$1:$2/$3", "id", "([^:|]+)\\|(.*)\\|(.*)"), `+
			`"id", "port:*:$1/$2", "id", "\\|(.*)\\|(.*)")`,
			rateOf("nta_nat", dir, unit, "host_ip, host_port, protocol", `direction="ingress"`)),
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString(" or ")
		}
		// Keep only instance and id: the or must see one label set per node.
		b.WriteString("sum by (instance, id) (" + p + ")")
	}
	return b.String()
}

// nodeStatExpr is a node statistic for the nodes that exist.
func nodeStatExpr(s nodeStat) string {
	expr := "(" + nodeTraffic(s.dir, s.unit) + ")"
	if s.dir != "" { // a share of the node's traffic, for its arc
		expr = "(" + expr + " / on(instance, id) (" + nodeTraffic("", s.unit) + " > 0))"
	}
	return expr + " and on(instance, id) nta_node_info{" + instanceSel + "}"
}

// Edge kinds by the end whose counters carry the edge's traffic.
const (
	edgeKindsBySource = "veth|member|parent|ovs_patch|ovs_tunnel|dnat"
	edgeKindsByTarget = "vm_nic|ovs_interface|ovs_port|publish"
)

// edgeStatExpr is an edge statistic: the traffic of the end node that
// carries it, as series with the edge's id.
func edgeStatExpr(s nodeStat) string {
	traffic := nodeTraffic(s.dir, s.unit)
	by := func(end, kinds string) string {
		return fmt.Sprintf(`sum by (instance, id) (nta_edge_info{%s, kind=~%q} * on(instance, %s) group_left() label_replace(%s, %q, "$1", "id", "(.*)"))`,
			instanceSel, kinds, end, "("+traffic+")", end)
	}
	return by("source", edgeKindsBySource) + " or " + by("target", edgeKindsByTarget)
}

// nodeIcons are the icons (grafana/ui names, availableIconsIndex in
// packages/grafana-data/src/types/icon.ts) of the node kinds that carry no
// traffic statistics: the panel draws a node's icon in place of its stats,
// so nodes with counters keep their numbers and arcs instead.
var nodeIcons = []struct{ kind, icon string }{
	{"netns", "layer-group"},
	{"docker_network", "apps"},
	{"libvirt_network", "globe"},
	{"tunnel_endpoint", "cloud"},
	{"vm_nic", "plug"},
}

// nodeIconExpr gives each node of an icon kind its icon as a label.
func nodeIconExpr() string {
	var parts []string
	for _, k := range nodeIcons {
		parts = append(parts, fmt.Sprintf(`max by (instance, id, icon) (label_replace(nta_node_info{%s, kind=%q}, "icon", %q, "", ""))`,
			instanceSel, k.kind, k.icon))
	}
	return strings.Join(parts, " or ")
}

// nodeDetail is a query whose labels fill the hover card (detail__*) of
// the nodes of one kind, one row per node id: src has an id label, and
// labels maps its labels to the detail fields they become.
type nodeDetail struct {
	refID  string
	src    string
	labels [][2]string // label, field
}

func (d nodeDetail) expr() string {
	e := d.src
	by := []string{"instance", "id"}
	for _, l := range d.labels {
		e = fmt.Sprintf(`label_replace(%s, %q, "$1", %q, "(.*)")`, e, l[1], l[0])
		by = append(by, l[1])
	}
	return "max by (" + strings.Join(by, ", ") + ") (" + e + ") and on(instance, id) nta_node_info{" + instanceSel + "}"
}

var nodeDetails = []nodeDetail{
	{"nodes_detail_container",
		fmt.Sprintf(`label_replace(nta_docker_container_info{%s}, "id", "container:$1", "container_id", "(.{12}).*")`, instanceSel),
		[][2]string{{"image", "detail__image"}, {"state", "detail__state"}, {"network_mode", "detail__network_mode"}, {"container_id", "detail__container_id"}}},
	{"nodes_detail_container_ip",
		fmt.Sprintf(`label_replace(topk by (instance, container_id) (1, nta_docker_endpoint_info{%s}), "id", "container:$1", "container_id", "(.{12}).*")`, instanceSel),
		[][2]string{{"ipv4", "detail__ip"}, {"mac", "detail__mac"}, {"network", "detail__network"}}},
	{"nodes_detail_vm",
		fmt.Sprintf(`label_replace(nta_libvirt_domain_info{%s}, "id", "vm:$1", "uuid", "(.*)")`, instanceSel),
		[][2]string{{"state", "detail__state"}, {"type", "detail__hypervisor"}, {"uuid", "detail__uuid"}}},
	{"nodes_detail_interface",
		fmt.Sprintf(`label_replace(label_join(nta_interface_info{%s}, "id", "/", "netns", "interface"), "id", "if:$1", "id", "(.*)")`, instanceSel),
		[][2]string{{"mac", "detail__mac"}, {"mtu", "detail__mtu"}, {"operstate", "detail__state"}}},
	{"nodes_detail_interface_ip",
		fmt.Sprintf(`label_replace(label_join(topk by (instance, netns, interface) (1, nta_interface_address_info{%s, family="inet"}), "id", "/", "netns", "interface"), "id", "if:$1", "id", "(.*)")`, instanceSel),
		[][2]string{{"address", "detail__ip"}}},
}

// nodeGraphTransformations join each frame's statistics into it by id and
// give the value columns the panel's field names.
func nodeGraphTransformations() []dashboard.DataTransformerConfig {
	rename := map[string]string{"kind": "detail__kind", "netns": "detail__netns"}
	hidden := withHidden(hiddenColumns("nodes", "edges"), "instance")
	for _, s := range nodeStats {
		rename["Value #"+s.refID] = s.field
	}
	for _, s := range edgeStats {
		rename["Value #"+s.refID] = s.field
	}
	hidden["Value #nodes_icon"] = true
	for _, d := range nodeDetails {
		hidden["Value #"+d.refID] = true
	}
	join := func(prefix string) dashboard.DataTransformerConfig {
		return dashboard.DataTransformerConfig{
			Id:      "joinByField",
			Filter:  &dashboard.MatcherConfig{Id: "byRefId", Options: "/^" + prefix + "/"},
			Options: map[string]any{"byField": "id", "mode": "outer"},
		}
	}
	return []dashboard.DataTransformerConfig{join("nodes"), join("edges"), organize(hidden, rename, nil)}
}

// nodeGraphOptions set the units of the statistics and the arcs' colours.
func nodeGraphNodeOptions() *nodegraph.NodeOptionsBuilder {
	return nodegraph.NewNodeOptionsBuilder().
		MainStatUnit("Bps").
		SecondaryStatUnit("pps").
		Arcs([]cog.Builder[nodegraph.ArcOption]{
			nodegraph.NewArcOptionBuilder().Field("arc__receive").Color("blue"),
			nodegraph.NewArcOptionBuilder().Field("arc__transmit").Color("orange"),
		})
}

func nodeGraphEdgeOptions() *nodegraph.EdgeOptionsBuilder {
	return nodegraph.NewEdgeOptionsBuilder().MainStatUnit("Bps").SecondaryStatUnit("pps")
}
