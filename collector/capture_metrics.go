package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tangfeixiong/nta/flowagg/afpacket"
)

// CaptureSource is the packet capture the flows collector reports on;
// *afpacket.Capturer implements it.
type CaptureSource interface {
	// Stats returns running kernel totals per captured interface.
	Stats() []afpacket.IfaceStats
	// Err is nil while every selected interface is captured: why capture
	// stopped once it has, or which interfaces cannot be captured.
	Err() error
	// LinkResubscribes counts the ends of the netlink link feed (ENOBUFS)
	// that were followed by a resubscribe and a full rescan.
	LinkResubscribes() uint64
}

// captureExporter exports the kernel's AF_PACKET statistics of a capture.
// Metrics are built fresh on each scrape, so released interfaces drop out.
type captureExporter struct {
	src                                  CaptureSource
	packets, drops, freezes, ifs, resubs *prometheus.Desc
}

// newCaptureExporter returns an exporter of nta_capture_kernel_packets_total,
// nta_capture_kernel_drops_total, nta_capture_kernel_freeze_queue_total
// (label interface), nta_capture_interfaces and
// nta_capture_netlink_resubscribes_total.
func newCaptureExporter(src CaptureSource) *captureExporter {
	l := []string{"interface"}
	return &captureExporter{
		src: src,
		packets: prometheus.NewDesc(Namespace+"_capture_kernel_packets_total",
			"Frames that passed the capture filter of the interface's AF_PACKET sockets, dropped ones included (tpacket_stats_v3 tp_packets), since capture started on it.", l, nil),
		drops: prometheus.NewDesc(Namespace+"_capture_kernel_drops_total",
			"Frames the kernel dropped because the capture ring was full (tpacket_stats_v3 tp_drops).", l, nil),
		freezes: prometheus.NewDesc(Namespace+"_capture_kernel_freeze_queue_total",
			"Times the capture ring froze because no block was free (tpacket_stats_v3 tp_freeze_q_cnt).", l, nil),
		ifs: prometheus.NewDesc(Namespace+"_capture_interfaces",
			"Interfaces being captured.", nil, nil),
		resubs: prometheus.NewDesc(Namespace+"_capture_netlink_resubscribes_total",
			"Times the netlink link notifications of the capture were lost (ENOBUFS) and subscribed again with a full interface rescan.", nil, nil),
	}
}

// collect sends the capture's metrics.
func (c *captureExporter) collect(ch chan<- prometheus.Metric) {
	stats := c.src.Stats()
	for _, s := range stats {
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(s.Packets), s.Name)
		ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(s.Drops), s.Name)
		ch <- prometheus.MustNewConstMetric(c.freezes, prometheus.CounterValue, float64(s.FreezeQueue), s.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.ifs, prometheus.GaugeValue, float64(len(stats)))
	ch <- prometheus.MustNewConstMetric(c.resubs, prometheus.CounterValue, float64(c.src.LinkResubscribes()))
}
