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

// nodeGraphPanel feeds Grafana's Node Graph with two instant table queries.
// Their label columns are already the field names the panel reads (id,
// title, subtitle for nodes; id, source, target for edges); the organize
// transformation only drops the constant Value/Time/__name__ columns and
// turns kind and netns into detail__ fields, which the panel shows in the
// node's context menu.
func nodeGraphPanel() *nodegraph.PanelBuilder {
	return nodegraph.NewPanelBuilder().
		Title("Host topology").
		Description("Nodes: nta_node_info (id, title, subtitle). Edges: nta_edge_info (id, source, target; kind in the context menu). Pick one instance: node ids repeat on every host.").
		Datasource(datasource()).
		Span(24).
		Height(18).
		WithTarget(instant("nodes", "nta_node_info{"+instanceSel+"}")).
		WithTarget(instant("edges", "nta_edge_info{"+instanceSel+"}")).
		WithTransformation(organize(
			withHidden(hiddenColumns("nodes", "edges"), "instance"),
			map[string]string{"kind": "detail__kind", "netns": "detail__netns"},
			nil)).
		Nodes(nodegraph.NewNodeOptionsBuilder()).
		Edges(nodegraph.NewEdgeOptionsBuilder()).
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
