package collector

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	registerCollector("netns", true, NeedHost, "network namespaces: named, Docker sandboxes and anonymous ones found through /proc", newNetnsCollector)
}

var (
	netnsInfo = prometheus.NewDesc(Namespace+"_netns_info",
		"A network namespace (value 1). netns is a stable id: host, named:NAME, docker:SANDBOX or ino:INODE.",
		[]string{"netns", "name", "kind", "inode", "owner_pid", "owner_comm"}, nil)
	scanErrors = prometheus.NewDesc(Namespace+"_netns_scan_errors",
		"Namespaces or interfaces that could not be read in the last scan (vanished mid-scan, or permission).", nil, nil)
)

type netnsCollector struct{ host HostSource }

func newNetnsCollector(src *Sources, _ *slog.Logger) (Collector, error) {
	return &netnsCollector{host: src.Host}, nil
}

// Update exports one info series per namespace.
func (c *netnsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	snap, err := c.host.Snapshot(ctx)
	if err != nil {
		return err
	}
	for _, ns := range snap.Namespaces {
		pid := ""
		if ns.OwnerPID > 0 {
			pid = strconv.Itoa(ns.OwnerPID)
		}
		ch <- prometheus.MustNewConstMetric(netnsInfo, prometheus.GaugeValue, 1,
			ns.ID, ns.Name, ns.Kind, strconv.FormatUint(ns.Inode, 10), pid, ns.OwnerComm)
	}
	ch <- prometheus.MustNewConstMetric(scanErrors, prometheus.GaugeValue, float64(len(snap.Errors)))
	return nil
}
