package collector

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/topology"
)

func init() {
	registerCollector("docker", true, NeedHost|NeedDocker, "Docker networks, containers, endpoints, published ports and per-container traffic (Engine API, cached from events)", newDockerCollector)
}

var (
	dockerNetworkInfo = prometheus.NewDesc(Namespace+"_docker_network_info",
		"A Docker network (value 1); bridge is the Linux bridge behind a bridge-driver network.",
		[]string{"network_id", "network", "driver", "scope", "subnet", "gateway", "bridge", "internal"}, nil)
	dockerContainerInfo = prometheus.NewDesc(Namespace+"_docker_container_info",
		"A Docker container (value 1); netns is the id of its network namespace (join with nta_netns_info / nta_interface_info).",
		[]string{"container_id", "container", "image", "state", "network_mode", "netns"}, nil)
	dockerEndpointInfo = prometheus.NewDesc(Namespace+"_docker_endpoint_info",
		"A container's endpoint on a Docker network (value 1): its addresses, the interface inside the container (netns, interface) and the host-side end of its veth (host_netns, host_interface).",
		[]string{"container_id", "container", "network", "network_id", "ipv4", "ipv6", "mac", "netns", "interface", "host_netns", "host_interface"}, nil)
	dockerPortInfo = prometheus.NewDesc(Namespace+"_docker_published_port_info",
		"A published port: host_ip:host_port forwards to the container's container_port/protocol (value 1).",
		[]string{"container_id", "container", "host_ip", "host_port", "container_port", "protocol"}, nil)
	containerLabels   = []string{"container_id", "container", "network", "interface"}
	containerCounters = []struct {
		desc *prometheus.Desc
		get  func(s *hostnet.Stats) uint64
	}{
		{containerCounter("receive_bytes_total", "Bytes the container received on this network (its own interface's receive counter)."), func(s *hostnet.Stats) uint64 { return s.RxBytes }},
		{containerCounter("receive_packets_total", "Packets the container received on this network."), func(s *hostnet.Stats) uint64 { return s.RxPackets }},
		{containerCounter("receive_errors_total", "Receive errors on the container's interface."), func(s *hostnet.Stats) uint64 { return s.RxErrors }},
		{containerCounter("receive_drops_total", "Received packets dropped on the container's interface."), func(s *hostnet.Stats) uint64 { return s.RxDropped }},
		{containerCounter("transmit_bytes_total", "Bytes the container sent on this network (its own interface's transmit counter)."), func(s *hostnet.Stats) uint64 { return s.TxBytes }},
		{containerCounter("transmit_packets_total", "Packets the container sent on this network."), func(s *hostnet.Stats) uint64 { return s.TxPackets }},
		{containerCounter("transmit_errors_total", "Transmit errors on the container's interface."), func(s *hostnet.Stats) uint64 { return s.TxErrors }},
		{containerCounter("transmit_drops_total", "Transmitted packets dropped on the container's interface."), func(s *hostnet.Stats) uint64 { return s.TxDropped }},
	}
)

func containerCounter(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_container_network_"+name,
		help+" Counted from the container's point of view.", containerLabels, nil)
}

type dockerCollector struct {
	host   HostSource
	docker DockerSource
}

func newDockerCollector(src *Sources, _ *slog.Logger) (Collector, error) {
	if src.Docker == nil {
		return nil, fmt.Errorf("no Docker source: start a dockerview.Watcher for Sources.Docker (see SourcesNeeded), or disable the collector with --no-collector.docker")
	}
	return &dockerCollector{host: src.Host, docker: src.Docker}, nil
}

// Update exports the cached Docker view joined with the host snapshot. When
// Docker is unreachable it reports no data: the watcher has already logged
// the reason once, and every other collector keeps serving.
func (c *dockerCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	view, err := c.docker.View()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoData, err)
	}
	snap, err := c.host.Snapshot(ctx)
	if err != nil {
		return err
	}
	for _, n := range view.Networks {
		ch <- prometheus.MustNewConstMetric(dockerNetworkInfo, prometheus.GaugeValue, 1,
			n.ID, n.Name, n.Driver, n.Scope, strings.Join(n.Subnets, ","), strings.Join(n.Gateways, ","),
			n.Bridge, strconv.FormatBool(n.Internal))
	}
	for i := range view.Containers {
		ct := &view.Containers[i]
		ch <- prometheus.MustNewConstMetric(dockerContainerInfo, prometheus.GaugeValue, 1,
			ct.ID, ct.Name, ct.Image, ct.State, ct.NetworkMode, topology.ContainerNetns(snap, &view, ct))
		for _, p := range ct.Ports {
			ch <- prometheus.MustNewConstMetric(dockerPortInfo, prometheus.GaugeValue, 1,
				ct.ID, ct.Name, p.HostIP, strconv.Itoa(int(p.HostPort)), strconv.Itoa(int(p.ContainerPort)), p.Proto)
		}
	}
	for _, a := range topology.Attachments(snap, &view) {
		ct, ep := a.Container, a.Endpoint
		ch <- prometheus.MustNewConstMetric(dockerEndpointInfo, prometheus.GaugeValue, 1,
			ct.ID, ct.Name, ep.Network, ep.NetworkID, ep.IPv4, ep.IPv6, ep.MAC,
			a.Netns, a.Interface, a.HostNetns, a.HostInterface)
		if a.Interface == "" {
			continue // host/none mode, or the interface vanished mid-scan
		}
		s := a.Stats
		for _, d := range containerCounters {
			ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.get(&s)),
				ct.ID, ct.Name, ep.Network, a.Interface)
		}
	}
	return nil
}
