package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tangfeixiong/nta/natview"
)

func init() {
	registerCollector("nat", true, NeedNAT, "north-south traffic through Docker's NAT per container, published port and peer (kernel conntrack over ctnetlink; needs CAP_NET_ADMIN)", newNATCollector)
}

var (
	natLabels     = []string{"container_id", "container", "kind", "direction", "protocol", "host_ip", "host_port", "peer"}
	natOpenedDesc = natDesc("connections_opened_total",
		"NAT'd connections of a workload (kind container: a Docker container, container_id its id; kind vm: a libvirt VM by its leased address, container_id its UUID, egress only) opened since the exporter started: ingress through a published port (DNAT; host_ip and host_port are the published binding, peer the client address) or egress through SNAT/MASQUERADE (peer the destination address:port). peer=\"overflow\" holds the peers folded away by the per-container budget.")
	natPortOpenedDesc = prometheus.NewDesc(Namespace+"_nat_published_port_connections_opened_total",
		"Ingress connections through a container's published port since the exporter started: the sum over its peers, monotonic when the budget folds a peer (alert on this one).",
		[]string{"container_id", "container", "protocol", "host_ip", "host_port"}, nil)
	natOpenDesc = natDesc("connections_open", "NAT'd connections of a container open now.")
	natBytes    = []struct {
		desc *prometheus.Desc
		get  func(s *natview.Series) uint64
	}{
		{natDesc("receive_bytes_total", "Bytes the container received on its NAT'd connections (conntrack accounting; absent while net.netfilter.nf_conntrack_acct=0)."), func(s *natview.Series) uint64 { return s.Received.Bytes }},
		{natDesc("receive_packets_total", "Packets the container received on its NAT'd connections."), func(s *natview.Series) uint64 { return s.Received.Packets }},
		{natDesc("transmit_bytes_total", "Bytes the container sent on its NAT'd connections."), func(s *natview.Series) uint64 { return s.Transmitted.Bytes }},
		{natDesc("transmit_packets_total", "Packets the container sent on its NAT'd connections."), func(s *natview.Series) uint64 { return s.Transmitted.Packets }},
	}
	natEventsDesc = prometheus.NewDesc(Namespace+"_nat_events_total",
		"Conntrack events applied, by type (new, update, destroy).", []string{"type"}, nil)
	natReceiveErrors = prometheus.NewDesc(Namespace+"_nat_receive_errors_total",
		"Receive errors on the conntrack event socket (ENOBUFS: events dropped by the kernel), each followed by a re-dial and a re-dump.", nil, nil)
	natLostDesc = prometheus.NewDesc(Namespace+"_nat_events_lost_total",
		"Connections whose NEW or DESTROY event never arrived and that a dump made up for (a connection that began and ended inside the gap is not seen at all).", nil, nil)
	natDumpsDesc = prometheus.NewDesc(Namespace+"_nat_dumps_total",
		"Full dumps of the conntrack table (start, periodic resync, after receive errors).", nil, nil)
	natDumpDuration = prometheus.NewDesc(Namespace+"_nat_dump_duration_seconds",
		"Time of the last conntrack dump, attribution included.", nil, nil)
	natTrackedDesc = prometheus.NewDesc(Namespace+"_nat_tracked_connections",
		"NAT'd connections in nta's table: attributed to a container, or unattributed (no known container or published port).", []string{"state"}, nil)
	natEntriesDesc = prometheus.NewDesc(Namespace+"_nat_conntrack_entries",
		"Entries in the kernel's conntrack table (/proc/sys/net/netfilter/nf_conntrack_count).", nil, nil)
	natLimitDesc = prometheus.NewDesc(Namespace+"_nat_conntrack_limit",
		"Size limit of the kernel's conntrack table (nf_conntrack_max); new connections are dropped when entries reach it.", nil, nil)
	natAcctDesc = prometheus.NewDesc(Namespace+"_nat_accounting_enabled",
		"1 when net.netfilter.nf_conntrack_acct=1 and byte/packet counters are exported.", nil, nil)
	natBudgetDesc = prometheus.NewDesc(Namespace+"_nat_peer_budget",
		"Peer series kept per container before the smallest are folded into peer=\"overflow\".", nil, nil)
	natFoldedDesc = prometheus.NewDesc(Namespace+"_nat_folded_peers_total",
		"Peers folded into the overflow series by the per-container budget.", nil, nil)
)

func natDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_nat_"+name, help, natLabels, nil)
}

type natCollector struct {
	nat NATSource
}

func newNATCollector(src *Sources, _ *slog.Logger) (Collector, error) {
	if src.NAT == nil {
		return nil, fmt.Errorf("no NAT source: start a natview.Watcher for Sources.NAT (see SourcesNeeded), or disable the collector with --no-collector.nat")
	}
	return &natCollector{nat: src.NAT}, nil
}

// Update exports the conntrack view. Without nf_conntrack or CAP_NET_ADMIN
// it reports no data; the watcher has logged once what is missing.
func (c *natCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	snap, err := c.nat.Snapshot()
	if errors.Is(err, natview.ErrUnavailable) {
		return fmt.Errorf("%w: %w", ErrNoData, err)
	}
	if err != nil {
		return err
	}
	h := &snap.Health
	for i := range snap.Series {
		s := &snap.Series[i]
		port := ""
		if s.Direction == natview.Ingress {
			port = strconv.Itoa(int(s.HostPort))
		}
		kind := s.Container.Kind
		if kind == "" {
			kind = natview.KindContainer
		}
		lv := []string{s.Container.ID, s.Container.Name, kind, s.Direction, s.Proto, s.HostIP, port, s.Peer}
		ch <- prometheus.MustNewConstMetric(natOpenedDesc, prometheus.CounterValue, float64(s.Opened), lv...)
		ch <- prometheus.MustNewConstMetric(natOpenDesc, prometheus.GaugeValue, float64(s.Open), lv...)
		if !h.Accounting {
			continue
		}
		for _, b := range natBytes {
			ch <- prometheus.MustNewConstMetric(b.desc, prometheus.CounterValue, float64(b.get(s)), lv...)
		}
	}
	for i := range snap.Ports {
		p := &snap.Ports[i]
		ch <- prometheus.MustNewConstMetric(natPortOpenedDesc, prometheus.CounterValue, float64(p.Opened),
			p.Container.ID, p.Container.Name, p.Proto, p.HostIP, strconv.Itoa(int(p.HostPort)))
	}
	for i, t := range []string{"new", "update", "destroy"} {
		ch <- prometheus.MustNewConstMetric(natEventsDesc, prometheus.CounterValue, float64(h.Events[i]), t)
	}
	ch <- prometheus.MustNewConstMetric(natReceiveErrors, prometheus.CounterValue, float64(h.ReceiveErrors))
	ch <- prometheus.MustNewConstMetric(natLostDesc, prometheus.CounterValue, float64(h.EventsLost))
	ch <- prometheus.MustNewConstMetric(natDumpsDesc, prometheus.CounterValue, float64(h.Dumps))
	ch <- prometheus.MustNewConstMetric(natDumpDuration, prometheus.GaugeValue, h.DumpDuration.Seconds())
	ch <- prometheus.MustNewConstMetric(natTrackedDesc, prometheus.GaugeValue, float64(h.Tracked-h.Unattributed), "attributed")
	ch <- prometheus.MustNewConstMetric(natTrackedDesc, prometheus.GaugeValue, float64(h.Unattributed), "unattributed")
	if h.Entries >= 0 {
		ch <- prometheus.MustNewConstMetric(natEntriesDesc, prometheus.GaugeValue, h.Entries)
	}
	if h.Limit >= 0 {
		ch <- prometheus.MustNewConstMetric(natLimitDesc, prometheus.GaugeValue, h.Limit)
	}
	acct := 0.0
	if h.Accounting {
		acct = 1
	}
	ch <- prometheus.MustNewConstMetric(natAcctDesc, prometheus.GaugeValue, acct)
	ch <- prometheus.MustNewConstMetric(natBudgetDesc, prometheus.GaugeValue, float64(h.PeerBudget))
	ch <- prometheus.MustNewConstMetric(natFoldedDesc, prometheus.CounterValue, float64(h.FoldedPeers))
	return nil
}
