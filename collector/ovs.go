package collector

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tangfeixiong/nta/ovsview"
)

func init() {
	registerCollector("ovs", true, NeedOVS, "Open vSwitch bridges, ports, interfaces (patch, tunnels, external ids) and the interfaces' statistics (OVSDB monitor, cached)", newOVSCollector)
}

var (
	ovsInfo = prometheus.NewDesc(Namespace+"_ovs_info",
		"The Open vSwitch instance (value 1): its version, database schema version and system-id.",
		[]string{"version", "db_version", "system_id"}, nil)
	ovsBridgeInfo = prometheus.NewDesc(Namespace+"_ovs_bridge_info",
		"An OVS bridge (value 1): datapath type (system, netdev) and fail mode.",
		[]string{"bridge", "datapath_type", "fail_mode"}, nil)
	ovsControllerConnected = prometheus.NewDesc(Namespace+"_ovs_controller_connected",
		"Whether an OVS bridge is connected to its OpenFlow controller (1) or not (0).",
		[]string{"bridge", "target"}, nil)
	ovsPortInfo = prometheus.NewDesc(Namespace+"_ovs_port_info",
		"A port of an OVS bridge (value 1): access VLAN tag (\"\" none), trunks, vlan_mode, and bond_mode when it bonds several interfaces.",
		[]string{"bridge", "port", "tag", "trunks", "vlan_mode", "bond_mode"}, nil)
	ovsInterfaceInfo = prometheus.NewDesc(Namespace+"_ovs_interface_info",
		"An OVS interface (value 1), labelled by name. type is system (a kernel device: join with nta_interface_info{netns=\"host\"} on interface), internal, patch, vxlan, geneve, gre, ...; ofport is \"\" when OVS could not add it, and error says why.",
		[]string{"bridge", "port", "interface", "type", "ofport", "mac", "admin_state", "link_state", "error"}, nil)
	ovsPatchInfo = prometheus.NewDesc(Namespace+"_ovs_patch_info",
		"A patch interface and its peer (value 1): the two join their bridges.",
		[]string{"bridge", "interface", "peer"}, nil)
	ovsTunnelInfo = prometheus.NewDesc(Namespace+"_ovs_tunnel_info",
		"A tunnel interface (value 1): its remote and local address, key, UDP port and the kernel device its packets leave by (tunnel_egress).",
		[]string{"bridge", "interface", "type", "remote_ip", "local_ip", "key", "dst_port", "tunnel_egress"}, nil)
	ovsExternalIDsInfo = prometheus.NewDesc(Namespace+"_ovs_interface_external_ids_info",
		"The external ids a hypervisor or ovs-docker wrote on an OVS interface (value 1), for interfaces that have any: attached_mac, iface_id and vm_id (libvirt, OpenStack), container_id and container_iface (ovs-docker).",
		[]string{"bridge", "interface", "attached_mac", "iface_id", "vm_id", "container_id", "container_iface"}, nil)
	ovsSkipped = prometheus.NewDesc(Namespace+"_ovs_rows_skipped_total",
		"OVSDB rows left out of the view since start because they did not fit it (a reference to a missing row, an unexpected type).",
		nil, nil)
	ovsLabels   = []string{"bridge", "port", "interface"}
	ovsCounters = sortedOVSCounters([]ovsCounterFamily{
		{name: "receive_bytes_total", help: "Bytes received", get: func(s *ovsview.Stats) uint64 { return s.RxBytes }},
		{name: "receive_packets_total", help: "Packets received", get: func(s *ovsview.Stats) uint64 { return s.RxPackets }},
		{name: "receive_drops_total", help: "Received packets dropped", get: func(s *ovsview.Stats) uint64 { return s.RxDropped }},
		{name: "receive_errors_total", help: "Receive errors", get: func(s *ovsview.Stats) uint64 { return s.RxErrors }},
		{name: "transmit_bytes_total", help: "Bytes transmitted", get: func(s *ovsview.Stats) uint64 { return s.TxBytes }},
		{name: "transmit_packets_total", help: "Packets transmitted", get: func(s *ovsview.Stats) uint64 { return s.TxPackets }},
		{name: "transmit_drops_total", help: "Packets dropped on transmit", get: func(s *ovsview.Stats) uint64 { return s.TxDropped }},
		{name: "transmit_errors_total", help: "Transmit errors", get: func(s *ovsview.Stats) uint64 { return s.TxErrors }},
	})
)

// ovsCounterFamily is one nta_ovs_interface_*_total family.
type ovsCounterFamily struct {
	name, help string // full name and help after sortedOVSCounters
	desc       *prometheus.Desc
	get        func(s *ovsview.Stats) uint64
}

// sortedOVSCounters completes the families and sorts them by name, the order
// a registry Gather gives them.
func sortedOVSCounters(fams []ovsCounterFamily) []ovsCounterFamily {
	for i := range fams {
		f := &fams[i]
		f.name = Namespace + "_ovs_interface_" + f.name
		f.help += " on an OVS interface, from its statistics column (ovs-vswitchd refreshes it every 5 s; the only counters the userspace datapath has for its ports)."
		f.desc = prometheus.NewDesc(f.name, f.help, ovsLabels, nil)
	}
	slices.SortFunc(fams, func(a, b ovsCounterFamily) int { return strings.Compare(a.name, b.name) })
	return fams
}

type ovsCollector struct{ ovs OVSSource }

func newOVSCollector(src *Sources, _ *slog.Logger) (Collector, error) {
	if src.OVS == nil {
		return nil, fmt.Errorf("no OVS source: start an ovsview.Watcher for Sources.OVS (see SourcesNeeded), or disable the collector with --no-collector.ovs")
	}
	return &ovsCollector{ovs: src.OVS}, nil
}

// Update exports the cached OVS view. When OVSDB is unreachable it reports
// no data: the watcher has logged why once, and every other collector
// keeps serving.
func (c *ovsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	v, err := c.ovs.View()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoData, err)
	}
	// The counters are most of the collector's series: on the text path the
	// /metrics handler writes them directly (see FlowText).
	text := flowTextFrom(ctx)
	if text != nil {
		text.setText("ovs", func(w io.Writer) error { return writeOVSCounters(w, &v) })
	}
	ch <- prometheus.MustNewConstMetric(ovsInfo, prometheus.GaugeValue, 1, v.Version, v.DBVersion, v.SystemID)
	for _, b := range v.Bridges {
		ch <- prometheus.MustNewConstMetric(ovsBridgeInfo, prometheus.GaugeValue, 1, b.Name, b.DatapathType, b.FailMode)
		for _, ctl := range b.Controllers {
			ch <- prometheus.MustNewConstMetric(ovsControllerConnected, prometheus.GaugeValue, boolValue(ctl.Connected), b.Name, ctl.Target)
		}
		for _, p := range b.Ports {
			tag := ""
			if p.Tag >= 0 {
				tag = strconv.Itoa(p.Tag)
			}
			trunks := make([]string, len(p.Trunks))
			for i, t := range p.Trunks {
				trunks[i] = strconv.Itoa(t)
			}
			ch <- prometheus.MustNewConstMetric(ovsPortInfo, prometheus.GaugeValue, 1, b.Name, p.Name, tag, strings.Join(trunks, ","), p.VLANMode, p.BondMode)
			for _, i := range p.Interfaces {
				ofport := ""
				if i.OFPort >= 0 {
					ofport = strconv.Itoa(i.OFPort)
				}
				ch <- prometheus.MustNewConstMetric(ovsInterfaceInfo, prometheus.GaugeValue, 1,
					b.Name, p.Name, i.Name, i.Type, ofport, i.MAC, i.AdminState, i.LinkState, i.Error)
				if i.Peer != "" {
					ch <- prometheus.MustNewConstMetric(ovsPatchInfo, prometheus.GaugeValue, 1, b.Name, i.Name, i.Peer)
				}
				if i.Tunnel() {
					ch <- prometheus.MustNewConstMetric(ovsTunnelInfo, prometheus.GaugeValue, 1,
						b.Name, i.Name, i.Type, i.RemoteIP, i.LocalIP, i.Key, i.DstPort, i.TunnelEgress)
				}
				if i.AttachedMAC != "" || i.IfaceID != "" || i.VMID != "" || i.ContainerID != "" || i.ContainerIface != "" {
					ch <- prometheus.MustNewConstMetric(ovsExternalIDsInfo, prometheus.GaugeValue, 1,
						b.Name, i.Name, i.AttachedMAC, i.IfaceID, i.VMID, i.ContainerID, i.ContainerIface)
				}
				if !i.HasStats || text != nil {
					continue
				}
				for _, oc := range ovsCounters {
					ch <- prometheus.MustNewConstMetric(oc.desc, prometheus.CounterValue, float64(oc.get(&i.Stats)), b.Name, p.Name, i.Name)
				}
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(ovsSkipped, prometheus.CounterValue, float64(v.Skipped))
	return nil
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// writeOVSCounters writes the interface counter families of v in the text
// format 0.0.4, the lines expfmt writes for them after a registry Gather:
// families by name, HELP and TYPE, series sorted by label values (bridge,
// interface, port: the labels in name order).
func writeOVSCounters(w io.Writer, v *ovsview.View) error {
	type row struct {
		bridge, iface, port string
		s                   *ovsview.Stats
	}
	var rows []row
	for bi := range v.Bridges {
		b := &v.Bridges[bi]
		for pi := range b.Ports {
			p := &b.Ports[pi]
			for ii := range p.Interfaces {
				if in := &p.Interfaces[ii]; in.HasStats {
					rows = append(rows, row{b.Name, in.Name, p.Name, &in.Stats})
				}
			}
		}
	}
	if len(rows) == 0 {
		return nil
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(strings.Compare(a.bridge, b.bridge), strings.Compare(a.iface, b.iface), strings.Compare(a.port, b.port))
	})
	buf := make([]byte, 0, 64<<10)
	for _, f := range ovsCounters {
		buf = append(buf, "# HELP "...)
		buf = append(buf, f.name...)
		buf = append(buf, ' ')
		buf = appendEscaped(buf, f.help, false)
		buf = append(buf, "\n# TYPE "...)
		buf = append(buf, f.name...)
		buf = append(buf, " counter\n"...)
		for _, r := range rows {
			buf = append(buf, f.name...)
			buf = append(buf, `{bridge="`...)
			buf = appendEscaped(buf, r.bridge, true)
			buf = append(buf, `",interface="`...)
			buf = appendEscaped(buf, r.iface, true)
			buf = append(buf, `",port="`...)
			buf = appendEscaped(buf, r.port, true)
			buf = append(buf, `"} `...)
			buf = appendCounter(buf, f.get(r.s))
			buf = append(buf, '\n')
			if len(buf) > 60<<10 {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
	}
	_, err := w.Write(buf)
	return err
}
