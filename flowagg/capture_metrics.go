package flowagg

import "github.com/prometheus/client_golang/prometheus"

// CaptureStatsSource is what the capture collector reads; *Capturer implements it.
type CaptureStatsSource interface {
	// Stats returns running kernel totals per captured interface.
	Stats() []IfaceStats
}

// CaptureCollector exports the kernel's AF_PACKET statistics of a Capturer.
// Metrics are built fresh on each scrape, so released interfaces drop out.
type CaptureCollector struct {
	src                          CaptureStatsSource
	packets, drops, freezes, ifs *prometheus.Desc
}

var _ prometheus.Collector = (*CaptureCollector)(nil)

// NewCaptureCollector returns a collector of nta_capture_kernel_packets_total,
// nta_capture_kernel_drops_total, nta_capture_kernel_freeze_queue_total
// (label interface) and nta_capture_interfaces.
func NewCaptureCollector(src CaptureStatsSource) *CaptureCollector {
	l := []string{"interface"}
	return &CaptureCollector{
		src: src,
		packets: prometheus.NewDesc("nta_capture_kernel_packets_total",
			"Frames that passed the capture filter of the interface's AF_PACKET sockets, dropped ones included (tpacket_stats_v3 tp_packets), since capture started on it.", l, nil),
		drops: prometheus.NewDesc("nta_capture_kernel_drops_total",
			"Frames the kernel dropped because the capture ring was full (tpacket_stats_v3 tp_drops).", l, nil),
		freezes: prometheus.NewDesc("nta_capture_kernel_freeze_queue_total",
			"Times the capture ring froze because no block was free (tpacket_stats_v3 tp_freeze_q_cnt).", l, nil),
		ifs: prometheus.NewDesc("nta_capture_interfaces",
			"Interfaces being captured.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *CaptureCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.packets
	ch <- c.drops
	ch <- c.freezes
	ch <- c.ifs
}

// Collect implements prometheus.Collector.
func (c *CaptureCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.src.Stats()
	for _, s := range stats {
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(s.Packets), s.Name)
		ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(s.Drops), s.Name)
		ch <- prometheus.MustNewConstMetric(c.freezes, prometheus.CounterValue, float64(s.FreezeQueue), s.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.ifs, prometheus.GaugeValue, float64(len(stats)))
}
