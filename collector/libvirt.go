package collector

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/topology"
)

func init() {
	registerCollector("libvirt", true, NeedHost|NeedLibvirt, "libvirt VMs, their NICs (tap, bridge, network), libvirt networks and DHCP leases, and per-VM-NIC traffic (libvirtd RPC, cached from events)", newLibvirtCollector)
}

var (
	libvirtDomainInfo = prometheus.NewDesc(Namespace+"_libvirt_domain_info",
		"A libvirt domain (VM) (value 1); uuid is stable across redefinitions, domain is its name.",
		[]string{"uuid", "domain", "state", "type"}, nil)
	libvirtNICInfo = prometheus.NewDesc(Namespace+"_libvirt_interface_info",
		"A NIC of a libvirt domain (value 1): the guest's mac, the host device that carries it (interface, in the host namespace: join with nta_interface_info), the bridge it joins (as the kernel says when the tap is up, else as libvirt says), the libvirt network, the macvtap source device, model, alias, virtualport type and OVS interface id. A NIC without a host device (hostdev) has interface \"\" and is keyed by nic (alias or mac).",
		[]string{"uuid", "domain", "nic", "mac", "type", "interface", "bridge", "network", "source_dev", "model", "alias", "virtualport", "interface_id"}, nil)
	libvirtNetworkInfo = prometheus.NewDesc(Namespace+"_libvirt_network_info",
		"A libvirt network (value 1) and the Linux bridge behind it; forward_mode is \"isolated\" without <forward>.",
		[]string{"uuid", "network", "bridge", "forward_mode", "active"}, nil)
	libvirtNetworkAddress = prometheus.NewDesc(Namespace+"_libvirt_network_address_info",
		"An address of a libvirt network (value 1), as in its XML.",
		[]string{"network", "address", "prefix_length", "family"}, nil)
	libvirtLeaseInfo = prometheus.NewDesc(Namespace+"_libvirt_dhcp_lease_info",
		"A DHCP lease of a libvirt network (value 1); domain is the VM owning the mac, \"\" when none.",
		[]string{"network", "mac", "ip", "hostname", "domain"}, nil)
	libvirtLeaseExpiry = prometheus.NewDesc(Namespace+"_libvirt_dhcp_lease_expiry_timestamp_seconds",
		"When a DHCP lease of a libvirt network expires (unix seconds).",
		[]string{"network", "mac", "ip"}, nil)
	libvirtParseErrors = prometheus.NewDesc(Namespace+"_libvirt_xml_errors_total",
		"Domain or network XML that could not be read (malformed, or the object vanished between list and read) since start; those objects are left out.",
		nil, nil)
	vmLabels   = []string{"uuid", "domain", "mac", "interface"}
	vmCounters = []struct {
		desc *prometheus.Desc
		get  func(s *hostnet.Stats) uint64
	}{
		// A tap's transmit is what the guest receives, and the other way round.
		{vmCounter("receive_bytes_total", "Bytes the VM received on this NIC (its tap's transmit counter)."), func(s *hostnet.Stats) uint64 { return s.TxBytes }},
		{vmCounter("receive_packets_total", "Packets the VM received on this NIC."), func(s *hostnet.Stats) uint64 { return s.TxPackets }},
		{vmCounter("receive_errors_total", "Errors on the way to the VM (its tap's transmit errors)."), func(s *hostnet.Stats) uint64 { return s.TxErrors }},
		{vmCounter("receive_drops_total", "Packets for the VM dropped on its tap (transmit drops)."), func(s *hostnet.Stats) uint64 { return s.TxDropped }},
		{vmCounter("transmit_bytes_total", "Bytes the VM sent on this NIC (its tap's receive counter)."), func(s *hostnet.Stats) uint64 { return s.RxBytes }},
		{vmCounter("transmit_packets_total", "Packets the VM sent on this NIC."), func(s *hostnet.Stats) uint64 { return s.RxPackets }},
		{vmCounter("transmit_errors_total", "Errors on the VM's sent packets (its tap's receive errors)."), func(s *hostnet.Stats) uint64 { return s.RxErrors }},
		{vmCounter("transmit_drops_total", "Packets the VM sent that its tap dropped (receive drops)."), func(s *hostnet.Stats) uint64 { return s.RxDropped }},
	}
)

func vmCounter(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_vm_network_"+name,
		help+" Counted from the VM's point of view.", vmLabels, nil)
}

type libvirtCollector struct {
	host    HostSource
	libvirt LibvirtSource
}

func newLibvirtCollector(src *Sources, _ *slog.Logger) (Collector, error) {
	if src.Libvirt == nil {
		return nil, fmt.Errorf("no libvirt source: start a libvirtview.Watcher for Sources.Libvirt (see SourcesNeeded), or disable the collector with --no-collector.libvirt")
	}
	return &libvirtCollector{host: src.Host, libvirt: src.Libvirt}, nil
}

// Update exports the cached libvirt view joined with the host snapshot.
// When libvirtd is unreachable (not installed, stopped, restarting) it
// reports no data: the watcher has logged why once, and every other
// collector keeps serving.
func (c *libvirtCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	view, err := c.libvirt.View()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoData, err)
	}
	snap, err := c.host.Snapshot(ctx)
	if err != nil {
		return err
	}
	owner := map[string]string{} // guest mac → domain name
	for i := range view.Domains {
		d := &view.Domains[i]
		ch <- prometheus.MustNewConstMetric(libvirtDomainInfo, prometheus.GaugeValue, 1, d.UUID, d.Name, d.State, d.Type)
		for _, n := range d.NICs {
			owner[n.MAC] = d.Name
		}
	}
	for _, a := range topology.VMAttachments(snap, &view) {
		d, n := a.Domain, a.NIC
		ch <- prometheus.MustNewConstMetric(libvirtNICInfo, prometheus.GaugeValue, 1,
			d.UUID, d.Name, n.Key(), n.MAC, n.Type, a.Interface, a.Bridge, n.Network, n.SourceDev, n.Model, n.Alias, n.VirtualPort, n.InterfaceID)
		if a.Interface == "" {
			continue // no host device, or it is not in this scan
		}
		s := a.Stats
		for _, vc := range vmCounters {
			ch <- prometheus.MustNewConstMetric(vc.desc, prometheus.CounterValue, float64(vc.get(&s)), d.UUID, d.Name, n.MAC, a.Interface)
		}
	}
	for _, n := range view.Networks {
		ch <- prometheus.MustNewConstMetric(libvirtNetworkInfo, prometheus.GaugeValue, 1,
			n.UUID, n.Name, n.Bridge, n.ForwardMode, strconv.FormatBool(n.Active))
		for _, a := range n.Addresses {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				continue
			}
			family := "ipv4"
			if p.Addr().Is6() {
				family = "ipv6"
			}
			ch <- prometheus.MustNewConstMetric(libvirtNetworkAddress, prometheus.GaugeValue, 1,
				n.Name, p.Addr().String(), strconv.Itoa(p.Bits()), family)
		}
		seen := map[[2]string]bool{}
		for _, l := range n.Leases {
			k := [2]string{l.MAC, l.IP}
			if seen[k] {
				continue // dnsmasq can list a renewed lease twice
			}
			seen[k] = true
			ch <- prometheus.MustNewConstMetric(libvirtLeaseInfo, prometheus.GaugeValue, 1, n.Name, l.MAC, l.IP, l.Hostname, owner[l.MAC])
			if !l.Expiry.IsZero() {
				ch <- prometheus.MustNewConstMetric(libvirtLeaseExpiry, prometheus.GaugeValue, float64(l.Expiry.Unix()), n.Name, l.MAC, l.IP)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(libvirtParseErrors, prometheus.CounterValue, float64(view.ParseErrors))
	return nil
}
