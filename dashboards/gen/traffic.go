package main

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// rate is sum by (by) (rate(metric{instance=~"$instance",extra}[$__rate_interval])).
func rate(by, metric, extra string) string {
	sel := instanceSel
	if extra != "" {
		sel += "," + extra
	}
	return fmt.Sprintf("sum by (%s) (rate(%s{%s}[$__rate_interval]))", by, metric, sel)
}

// topk10 keeps the ten largest series of expr at each step.
func topk10(expr string) string { return "topk(10, " + expr + ")" }

// trafficDashboard is traffic over time: per container (from the
// container's point of view), per host interface, the exporter's own
// collectors, and the flow metrics of packet capture.
func trafficDashboard() *dashboard.DashboardBuilder {
	const (
		rxBytes = "nta_container_network_receive_bytes_total"
		txBytes = "nta_container_network_transmit_bytes_total"
		host    = `netns="host"`
		ctrSel  = `container=~"$container"`
		vmSel   = `domain=~"$domain"`

		natOpened = "nta_nat_connections_opened_total"
		natRx     = "nta_nat_receive_bytes_total"
		natTx     = "nta_nat_transmit_bytes_total"
		natIn     = `direction="ingress"`
		natOut    = `direction="egress"`
	)
	return dashboard.NewDashboardBuilder("nta / Traffic").
		Uid("nta-traffic").
		Description("Per-container and per-interface traffic from kernel counters, nta-exporter's collectors, and flows from packet capture.").
		Tags([]string{"nta", "network", "traffic"}).
		Editable().
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(link()).
		WithVariable(datasourceVariable()).
		WithVariable(instanceVariable(true)).
		WithVariable(workloadVariable("container", "Container", "nta_docker_container_info")).
		WithVariable(workloadVariable("domain", "VM", "nta_libvirt_domain_info")).
		WithRow(dashboard.NewRowBuilder("Containers")).
		WithPanel(series("Received by container", "Bytes/s the container received, read on its own interface (not the host-side veth, whose transmit it is).", "Bps").
			WithTarget(rangeQuery("A", rate("container", rxBytes, ctrSel), "{{container}}"))).
		WithPanel(series("Transmitted by container", "Bytes/s the container sent, read on its own interface.", "Bps").
			WithTarget(rangeQuery("A", rate("container", txBytes, ctrSel), "{{container}}"))).
		WithPanel(series("Packets by container", "Packets/s received (rx) and transmitted (tx) by each container.", "pps").
			WithTarget(rangeQuery("A", rate("container", "nta_container_network_receive_packets_total", ctrSel), "{{container}} rx")).
			WithTarget(rangeQuery("B", rate("container", "nta_container_network_transmit_packets_total", ctrSel), "{{container}} tx"))).
		WithPanel(series("Drops and errors by container", "Packets/s dropped or in error on each container's interfaces; anything above zero deserves a look.", "pps").
			WithTarget(rangeQuery("A", rate("container", "nta_container_network_receive_drops_total", ctrSel), "{{container}} rx drops")).
			WithTarget(rangeQuery("B", rate("container", "nta_container_network_transmit_drops_total", ctrSel), "{{container}} tx drops")).
			WithTarget(rangeQuery("C", rate("container", "nta_container_network_receive_errors_total", ctrSel), "{{container}} rx errors")).
			WithTarget(rangeQuery("D", rate("container", "nta_container_network_transmit_errors_total", ctrSel), "{{container}} tx errors"))).
		WithRow(dashboard.NewRowBuilder("North-south: Docker NAT (conntrack)")).
		WithPanel(series("Ingress connections per published port", "New connections per second through each published port (DNAT), from the kernel's connection tracking (nta_nat_published_port_connections_opened_total). Connections from the host to 127.0.0.1 go through docker-proxy and are not counted.", "cps").
			WithTarget(rangeQuery("A", rate("container, host_ip, host_port, protocol", "nta_nat_published_port_connections_opened_total", ""), "{{host_ip}}:{{host_port}}/{{protocol}} → {{container}}"))).
		WithPanel(series("Ingress bytes per published port", "Bytes/s through each published port: received by the container (from clients) and transmitted (its answers). Needs net.netfilter.nf_conntrack_acct=1 (--collector.nat.accounting).", "Bps").
			WithTarget(rangeQuery("A", rate("container, host_ip, host_port, protocol", natRx, natIn), "{{host_ip}}:{{host_port}}/{{protocol}} → {{container}} in")).
			WithTarget(rangeQuery("B", rate("container, host_ip, host_port, protocol", natTx, natIn), "{{host_ip}}:{{host_port}}/{{protocol}} → {{container}} out"))).
		WithPanel(series("Egress per container (SNAT/MASQUERADE)", "Bytes/s each container sends to (tx) and receives from (rx) the outside through source NAT (accounting on).", "Bps").
			WithTarget(rangeQuery("A", rate("container", natTx, natOut), "{{container}} tx")).
			WithTarget(rangeQuery("B", rate("container", natRx, natOut), "{{container}} rx"))).
		WithPanel(series("Egress connections per container", "New outgoing connections per second through source NAT, per container and protocol.", "cps").
			WithTarget(rangeQuery("A", rate("container, protocol", natOpened, natOut), "{{container}} {{protocol}}"))).
		WithPanel(series("Top ingress clients (connections)", "The ten client addresses opening the most connections per second to a published port; peer=\"overflow\" holds the clients folded away by the per-container budget (--collector.nat.peer-budget).", "cps").
			WithTarget(rangeQuery("A", topk10(rate("container, host_port, peer", natOpened, natIn)), "{{peer}} → {{container}}:{{host_port}}"))).
		WithPanel(series("Top egress destinations (bytes)", "The ten outside destinations (address:port) containers send the most bytes to through source NAT.", "Bps").
			WithTarget(rangeQuery("A", topk10(rate("container, peer", natTx, natOut)), "{{container}} → {{peer}}"))).
		WithPanel(series("Conntrack table and NAT view health", "Entries in the kernel's conntrack table against its limit (new connections are dropped at the limit), and conntrack events the exporter lost (socket overruns, each repaired by a re-dump).", "short").
			WithTarget(rangeQuery("A", "max by (instance) (nta_nat_conntrack_entries{"+instanceSel+"})", "{{instance}} entries")).
			WithTarget(rangeQuery("B", "max by (instance) (nta_nat_conntrack_limit{"+instanceSel+"})", "{{instance}} limit")).
			WithTarget(rangeQuery("C", rate("instance", "nta_nat_receive_errors_total", ""), "{{instance}} receive errors/s")).
			WithTarget(rangeQuery("D", rate("instance", "nta_nat_events_lost_total", ""), "{{instance}} lost events/s"))).
		WithRow(dashboard.NewRowBuilder("Host interfaces (host namespace)")).
		WithPanel(series("Received by interface (top 10)", "Bytes/s received by interfaces of the host namespace, from each interface's own point of view: a host-side veth receives what its container sends.", "Bps").
			WithTarget(rangeQuery("A", topk10(rate("interface", "nta_interface_receive_bytes_total", host)), "{{interface}}"))).
		WithPanel(series("Transmitted by interface (top 10)", "Bytes/s transmitted by interfaces of the host namespace (a host-side veth transmits what its container receives).", "Bps").
			WithTarget(rangeQuery("A", topk10(rate("interface", "nta_interface_transmit_bytes_total", host)), "{{interface}}"))).
		WithPanel(series("Packets by interface (top 10)", "Packets/s received plus transmitted by interfaces of the host namespace.", "pps").
			WithTarget(rangeQuery("A", topk10(rate("interface", "nta_interface_receive_packets_total", host)+" + "+rate("interface", "nta_interface_transmit_packets_total", host)), "{{interface}}"))).
		WithPanel(series("Drops and errors by interface (top 10)", "Packets/s dropped or in error (receive and transmit together) on interfaces of the host namespace.", "pps").
			WithTarget(rangeQuery("A", topk10(rate("interface", "nta_interface_receive_drops_total", host)+" + "+rate("interface", "nta_interface_transmit_drops_total", host)), "{{interface}} drops")).
			WithTarget(rangeQuery("B", topk10(rate("interface", "nta_interface_receive_errors_total", host)+" + "+rate("interface", "nta_interface_transmit_errors_total", host)), "{{interface}} errors"))).
		WithRow(dashboard.NewRowBuilder("VMs (libvirt)")).
		WithPanel(series("Received by VM NIC", "Bytes/s each VM NIC received, from the VM's point of view (its tap's transmit counter).", "Bps").
			WithTarget(rangeQuery("A", rate("domain, mac", "nta_vm_network_receive_bytes_total", vmSel), "{{domain}} {{mac}}"))).
		WithPanel(series("Transmitted by VM NIC", "Bytes/s each VM NIC sent (its tap's receive counter).", "Bps").
			WithTarget(rangeQuery("A", rate("domain, mac", "nta_vm_network_transmit_bytes_total", vmSel), "{{domain}} {{mac}}"))).
		WithPanel(series("Packets by VM NIC", "Packets/s received (rx) and transmitted (tx) by each VM NIC.", "pps").
			WithTarget(rangeQuery("A", rate("domain, mac", "nta_vm_network_receive_packets_total", vmSel), "{{domain}} {{mac}} rx")).
			WithTarget(rangeQuery("B", rate("domain, mac", "nta_vm_network_transmit_packets_total", vmSel), "{{domain}} {{mac}} tx"))).
		WithPanel(series("Drops and errors by VM NIC", "Packets/s dropped or in error on the way to or from each VM NIC.", "pps").
			WithTarget(rangeQuery("A", rate("domain, mac", "nta_vm_network_receive_drops_total", vmSel)+" + "+rate("domain, mac", "nta_vm_network_transmit_drops_total", vmSel), "{{domain}} {{mac}} drops")).
			WithTarget(rangeQuery("B", rate("domain, mac", "nta_vm_network_receive_errors_total", vmSel)+" + "+rate("domain, mac", "nta_vm_network_transmit_errors_total", vmSel), "{{domain}} {{mac}} errors"))).
		WithRow(dashboard.NewRowBuilder("Open vSwitch")).
		WithPanel(series("Traffic by OVS bridge", "Bytes/s received (rx) and transmitted (tx) by the ports of each OVS bridge together, from the Interface table's statistics (refreshed every 5 s by ovs-vswitchd).", "Bps").
			WithTarget(rangeQuery("A", rate("bridge", "nta_ovs_interface_receive_bytes_total", ""), "{{bridge}} rx")).
			WithTarget(rangeQuery("B", rate("bridge", "nta_ovs_interface_transmit_bytes_total", ""), "{{bridge}} tx"))).
		WithPanel(series("Traffic by OVS port (top 10)", "Bytes/s received plus transmitted per OVS port; patch ports show what crosses between bridges, tunnel ports what leaves the host.", "Bps").
			WithTarget(rangeQuery("A", topk10(rate("bridge, port", "nta_ovs_interface_receive_bytes_total", "")+" + "+rate("bridge, port", "nta_ovs_interface_transmit_bytes_total", "")), "{{bridge}}/{{port}}"))).
		WithPanel(series("OVS drops and errors (top 10)", "Packets/s dropped or in error per OVS interface, receive and transmit together.", "pps").
			WithTarget(rangeQuery("A", topk10(rate("bridge, interface", "nta_ovs_interface_receive_drops_total", "")+" + "+rate("bridge, interface", "nta_ovs_interface_transmit_drops_total", "")), "{{bridge}}/{{interface}} drops")).
			WithTarget(rangeQuery("B", topk10(rate("bridge, interface", "nta_ovs_interface_receive_errors_total", "")+" + "+rate("bridge, interface", "nta_ovs_interface_transmit_errors_total", "")), "{{bridge}}/{{interface}} errors"))).
		WithPanel(series("OVS controllers connected", "1 when the bridge is connected to its OpenFlow controller.", "none").
			Min(0).Max(1).
			WithTarget(rangeQuery("A", "min by (bridge, target) (nta_ovs_controller_connected{"+instanceSel+"})", "{{bridge}} → {{target}}"))).
		WithRow(dashboard.NewRowBuilder("Exporter")).
		WithPanel(series("Collector success", "1 when the collector's last scrape worked, 0 on failure or when its source (e.g. dockerd) is absent.", "none").
			Min(0).Max(1).
			WithTarget(rangeQuery("A", "min by (collector) (nta_collector_success{"+instanceSel+"})", "{{collector}}"))).
		WithPanel(series("Collector duration", "Time each collector took in the last scrape.", "s").
			WithTarget(rangeQuery("A", "max by (collector) (nta_collector_duration_seconds{"+instanceSel+"})", "{{collector}}"))).
		WithPanel(series("Collector failures", "Scrapes per second in which the collector failed.", "short").
			WithTarget(rangeQuery("A", rate("collector", "nta_collector_errors_total", ""), "{{collector}}"))).
		WithPanel(series("Namespace scan errors", "Namespaces or interfaces that vanished or could not be read in the last scan (races with teardown are normal; a steady value is not).", "short").
			WithTarget(rangeQuery("A", "max by (instance) (nta_netns_scan_errors{"+instanceSel+"})", "{{instance}}"))).
		WithRow(dashboard.NewRowBuilder("Flows (packet capture)")).
		WithPanel(series("Top flows by bytes", "Bytes/s per flow and capture interface (nta_flow_bytes_total). A flow seen on several interfaces (a host-side veth and its bridge) appears once per interface. src_name/dst_name are present when the exporter resolves addresses to workloads. Empty when capture is off.", "Bps").
			Span(24).
			WithTarget(rangeQuery("A", topk10(rate("interface, src, src_name, dst, dst_name", "nta_flow_bytes_total", "")), "{{interface}}: {{src}} {{src_name}} → {{dst}} {{dst_name}}"))).
		WithPanel(series("Capture: kernel drops", "Frames the kernel dropped because a capture ring was full (tpacket_stats_v3 tp_drops). Flow counts undercount while this is above zero.", "pps").
			WithTarget(rangeQuery("A", rate("interface", "nta_capture_kernel_drops_total", ""), "{{interface}} dropped")).
			WithTarget(rangeQuery("B", rate("interface", "nta_capture_kernel_packets_total", ""), "{{interface}} captured"))).
		WithPanel(series("Flow table usage", "Flows in each interface's table as a share of its limit; at 100% new flows are folded into the overflow series.", "percentunit").
			Min(0).
			WithTarget(rangeQuery("A", "max by (interface) (nta_flow_table_flows{"+instanceSel+"}) / max by (interface) (nta_flow_table_limit{"+instanceSel+"})", "{{interface}}"))).
		WithPanel(series("ARP conflicts", "Claims of an IP by a MAC other than the one that claimed it recently (nta_arp_conflicts_total): ARP spoofing, a duplicate address, or a failover.", "short").
			WithTarget(rangeQuery("A", "sum by (interface, ip) (increase(nta_arp_conflicts_total{"+instanceSel+"}[$__rate_interval]))", "{{interface}} {{ip}}"))).
		WithPanel(series("Flows folded into overflow", "Flows per second folded into the overflow series because a budget was reached (per interface or total).", "short").
			WithTarget(rangeQuery("A", rate("interface", "nta_flow_folded_flows_total", ""), "{{interface}} per-interface budget")).
			WithTarget(rangeQuery("B", rate("interface", "nta_flow_evicted_flows_total", ""), "{{interface}} total budget")))
}

// workloadVariable lets the user pick containers or VMs (name) by the
// label of family; the Node Graph's data links set it to one node.
func workloadVariable(name, label, family string) *dashboard.QueryVariableBuilder {
	q := "label_values(" + family + "{" + instanceSel + "}, " + name + ")"
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).
		Definition(q).
		Datasource(datasource()).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).IncludeAll(true).AllValue(".*").
		Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr("All")}, Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("$__all")}})
}

// series is a time-series panel, half the width, with a table legend.
func series(title, description, unit string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Span(12).
		Height(8).
		Unit(unit).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).
		Legend(legend()).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
}
