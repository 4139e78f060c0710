package main

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/nodegraph"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// topologyDashboard is the host diagram: a Node Graph of nta_node_info and
// nta_edge_info, and the _info families behind it as tables.
func topologyDashboard() *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder("nta / Host topology").
		Uid("nta-topology").
		Description("How the host is wired: namespaces, interfaces, bridges, veth pairs, Docker networks and containers, from nta-exporter's _info metrics.").
		Tags([]string{"nta", "network", "topology"}).
		Editable().
		Refresh("1m").
		Time("now-15m", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(link()).
		WithVariable(datasourceVariable()).
		WithVariable(instanceVariable(false)).
		WithRow(dashboard.NewRowBuilder("Graph")).
		WithPanel(nodeGraphPanel()).
		WithRow(dashboard.NewRowBuilder("Docker")).
		WithPanel(infoTable("Containers", "nta_docker_container_info",
			"Containers known to the Docker Engine. netns is the nta namespace id of the container's sandbox.",
			"container", "state", "image", "network_mode", "netns", "container_id").Span(24)).
		WithPanel(infoTable("Endpoints and host-side veths", "nta_docker_endpoint_info",
			"Each endpoint of a container: the interface inside its namespace and the veth on the host side that carries its traffic.",
			"container", "network", "ipv4", "ipv6", "mac", "netns", "interface", "host_netns", "host_interface", "container_id", "network_id").Span(24)).
		WithPanel(infoTable("Docker networks", "nta_docker_network_info",
			"Docker networks and the Linux bridge behind each.",
			"network", "driver", "scope", "subnet", "gateway", "bridge", "internal", "network_id")).
		WithPanel(infoTable("Published ports", "nta_docker_published_port_info",
			"-p host:container port mappings.",
			"container", "host_ip", "host_port", "container_port", "protocol", "container_id")).
		WithRow(dashboard.NewRowBuilder("Bridges and veth pairs")).
		WithPanel(infoTable("Bridge ports", "nta_bridge_port_info",
			"Interfaces enslaved to a bridge, bond or Open vSwitch master, with their STP state.",
			"netns", "bridge", "interface", "master_kind", "stp_state")).
		WithPanel(infoTable("Veth peers", "nta_veth_peer_info",
			"Both ends of every veth pair, resolved across namespaces.",
			"netns", "interface", "peer_netns", "peer_interface"))
}

// nodeGraphPanel feeds Grafana's Node Graph: nta_node_info and
// nta_edge_info as instant table queries (their label columns are the
// panel's id, title, subtitle and id, source, target), one query per
// statistic keyed by id, and the transformations that join and name them
// (nodegraph.go).
func nodeGraphPanel() *nodegraph.PanelBuilder {
	p := nodegraph.NewPanelBuilder().
		Title("Host topology").
		Description("Nodes: nta_node_info; main stat the node's bytes/s (an interface, container, VM, OVS bridge or port, each from its own point of view), secondary stat its packets/s, arcs the receive and transmit share. Edges: nta_edge_info; main stat bytes/s over the link (veth pair, bridge port, VM tap, OVS port, patch, tunnel), secondary stat packets/s. Pick one instance: node ids repeat on every host.").
		Datasource(datasource()).
		Span(24).
		Height(18).
		WithTarget(instant("nodes", "nta_node_info{"+instanceSel+"}")).
		WithTarget(instant("edges", "nta_edge_info{"+instanceSel+"}"))
	for _, s := range nodeStats {
		p = p.WithTarget(instant(s.refID, nodeStatExpr(s)))
	}
	for _, s := range edgeStats {
		p = p.WithTarget(instant(s.refID, edgeStatExpr(s)))
	}
	p = p.WithTarget(instant("nodes_icon", nodeIconExpr()))
	for _, d := range nodeDetails {
		p = p.WithTarget(instant(d.refID, d.expr()))
	}
	for _, tr := range nodeGraphTransformations() {
		p = p.WithTransformation(tr)
	}
	// A node's context menu opens the traffic dashboard on it: the node's
	// title is a container's or VM's name (the traffic dashboard's
	// container and domain variables), an interface's name otherwise.
	p = p.OverrideByName("id", []dashboard.DynamicConfigValue{{Id: "links", Value: []map[string]any{{
		"title": "nta/Traffic of ${__data.fields.title}",
		"url":   "/d/nta-traffic/nta-traffic?${__url_time_range}&var-instance=${instance}&var-container=${__data.fields.title}&var-domain=${__data.fields.title}",
	}}}})
	return p.Nodes(nodeGraphNodeOptions()).
		Edges(nodeGraphEdgeOptions()).
		ZoomMode(nodegraph.ZoomModeCooperative)
}

// infoTable shows one _info family as a table, one row per series, with the
// columns in order (instance last) and sorted by the first of them.
func infoTable(title, metric, description string, columns ...string) *table.PanelBuilder {
	order := append(append([]string{}, columns...), "instance")
	return table.NewPanelBuilder().
		Title(title).
		Description(description + " (" + metric + ")").
		Datasource(datasource()).
		Span(12).
		Height(8).
		WithTarget(instant("A", metric+"{"+instanceSel+"}")).
		WithTransformation(organize(hiddenColumns("A"), nil, order)).
		Filterable(true).
		Footer(common.NewTableFooterOptionsBuilder().Show(true).CountRows(true).Reducer([]string{"count"})).
		CellHeight(common.TableCellHeightSm).
		SortBy([]cog.Builder[common.TableSortByFieldState]{
			common.NewTableSortByFieldStateBuilder().DisplayName(columns[0]),
		})
}

// withHidden returns h with more columns hidden.
func withHidden(h map[string]bool, more ...string) map[string]bool {
	for _, m := range more {
		h[m] = true
	}
	return h
}
