package collector

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tangfeixiong/nta/topology"
)

func init() {
	registerCollector("graph", true, NeedHost|NeedDocker|NeedLibvirt|NeedOVS, "the host topology as Grafana Node Graph nodes and edges", newGraphCollector)
}

var (
	nodeInfo = prometheus.NewDesc(Namespace+"_node_info",
		"A node of the host topology for Grafana's Node Graph (value 1): labels id, title, subtitle, kind are the panel's field names; netns is set for interfaces and namespaces.",
		[]string{"id", "title", "subtitle", "kind", "netns"}, nil)
	edgeInfo = prometheus.NewDesc(Namespace+"_edge_info",
		"An edge of the host topology for Grafana's Node Graph (value 1): id, source and target are node ids.",
		[]string{"id", "source", "target", "kind"}, nil)
)

type graphCollector struct {
	host HostSource
	// Docker and libvirt may be nil or unavailable: the graph then holds
	// what the kernel and the other daemon show.
	src Sources
}

func newGraphCollector(src *Sources, _ *slog.Logger) (Collector, error) {
	return &graphCollector{host: src.Host, src: Sources{Docker: src.Docker, Libvirt: src.Libvirt, OVS: src.OVS}}, nil
}

// Update exports the graph built fresh from the latest readings, so removed
// containers and interfaces drop out at once.
func (c *graphCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	snap, err := c.host.Snapshot(ctx)
	if err != nil {
		return err
	}
	g := topology.Build(snap, c.src.views())
	for _, n := range g.Nodes {
		ch <- prometheus.MustNewConstMetric(nodeInfo, prometheus.GaugeValue, 1, n.ID, n.Title, n.Subtitle, n.Kind, n.Netns)
	}
	for _, e := range g.Edges {
		ch <- prometheus.MustNewConstMetric(edgeInfo, prometheus.GaugeValue, 1, e.ID, e.Source, e.Target, e.Kind)
	}
	return nil
}
