package collector

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tangfeixiong/nta/hostnet"
)

func init() {
	registerCollector("links", true, NeedHost, "every interface in every network namespace (netlink): info, bridge ports, veth peers, addresses, stats64 counters", newLinksCollector)
}

var (
	linkLabels      = []string{"netns", "interface"}
	interfaceInfo   = prometheus.NewDesc(Namespace+"_interface_info", "An interface in a network namespace (value 1). Join on netns+interface.", []string{"netns", "interface", "ifindex", "kind", "mac", "mtu", "operstate", "master"}, nil)
	interfaceAddr   = prometheus.NewDesc(Namespace+"_interface_address_info", "An IP address configured on an interface (value 1).", []string{"netns", "interface", "address", "prefix_length", "family"}, nil)
	bridgePortInfo  = prometheus.NewDesc(Namespace+"_bridge_port_info", "An interface enslaved to a bridge (Linux bridge, OVS or bond master), with its STP state (value 1).", []string{"netns", "bridge", "interface", "master_kind", "stp_state"}, nil)
	vethPeerInfo    = prometheus.NewDesc(Namespace+"_veth_peer_info", "The other end of a veth, resolved across namespaces (value 1). peer_netns is empty when the peer's namespace cannot be found.", []string{"netns", "interface", "peer_netns", "peer_interface"}, nil)
	interfaceUp     = prometheus.NewDesc(Namespace+"_interface_up", "1 when the interface's operstate is up (or unknown, as for loopback and tun), else 0.", linkLabels, nil)
	statDescriptors = []struct {
		desc *prometheus.Desc
		get  func(s *hostnet.Stats) uint64
	}{
		{counter("receive_bytes_total", "Bytes the interface received, as counted by the kernel (rtnl_link_stats64) from the interface's own point of view."), func(s *hostnet.Stats) uint64 { return s.RxBytes }},
		{counter("receive_packets_total", "Packets the interface received."), func(s *hostnet.Stats) uint64 { return s.RxPackets }},
		{counter("receive_errors_total", "Receive errors."), func(s *hostnet.Stats) uint64 { return s.RxErrors }},
		{counter("receive_drops_total", "Received packets dropped."), func(s *hostnet.Stats) uint64 { return s.RxDropped }},
		{counter("transmit_bytes_total", "Bytes the interface transmitted, from the interface's own point of view: for a host-side veth this is what the container received."), func(s *hostnet.Stats) uint64 { return s.TxBytes }},
		{counter("transmit_packets_total", "Packets the interface transmitted."), func(s *hostnet.Stats) uint64 { return s.TxPackets }},
		{counter("transmit_errors_total", "Transmit errors."), func(s *hostnet.Stats) uint64 { return s.TxErrors }},
		{counter("transmit_drops_total", "Transmitted packets dropped."), func(s *hostnet.Stats) uint64 { return s.TxDropped }},
	}
)

func counter(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_interface_"+name, help, linkLabels, nil)
}

type linksCollector struct {
	host   HostSource
	logger *slog.Logger
}

func newLinksCollector(src *Sources, logger *slog.Logger) (Collector, error) {
	return &linksCollector{host: src.Host, logger: logger}, nil
}

// Update exports every link of the latest host snapshot.
func (c *linksCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	snap, err := c.host.Snapshot(ctx)
	if err != nil {
		return err
	}
	for _, l := range snap.Links {
		ch <- prometheus.MustNewConstMetric(interfaceInfo, prometheus.GaugeValue, 1,
			l.Netns, l.Name, strconv.Itoa(l.Index), l.Kind, l.MAC, strconv.Itoa(l.MTU), l.OperState, l.Master)
		up := 0.0
		if l.OperState == "up" || l.OperState == "unknown" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(interfaceUp, prometheus.GaugeValue, up, l.Netns, l.Name)
		for _, a := range l.Addrs {
			ch <- prometheus.MustNewConstMetric(interfaceAddr, prometheus.GaugeValue, 1,
				l.Netns, l.Name, a.Prefix.Addr().String(), strconv.Itoa(a.Prefix.Bits()), a.Family)
		}
		if l.Master != "" {
			ch <- prometheus.MustNewConstMetric(bridgePortInfo, prometheus.GaugeValue, 1,
				l.Netns, l.Master, l.Name, l.MasterKind, l.STPState)
		}
		if l.Kind == "veth" {
			ch <- prometheus.MustNewConstMetric(vethPeerInfo, prometheus.GaugeValue, 1,
				l.Netns, l.Name, l.PeerNetns, l.PeerName)
		}
		s := l.Stats
		for _, d := range statDescriptors {
			ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.get(&s)), l.Netns, l.Name)
		}
	}
	return nil
}
