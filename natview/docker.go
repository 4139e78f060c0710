package natview

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/libvirtview"
)

// DockerViewer is what [ViewsResolver] reads of Docker: *dockerview.Watcher.
type DockerViewer interface {
	View() (dockerview.View, error)
}

// LibvirtViewer is what [ViewsResolver] reads of libvirt: *libvirtview.Watcher.
type LibvirtViewer interface {
	View() (libvirtview.View, error)
}

// ViewsResolver returns a [Resolver] over the cached views: every Docker
// container's endpoint addresses and published ports, every VM's leased
// addresses when l is not nil (a VM on a libvirt NAT network reaches the
// outside through MASQUERADE too), and the addresses of the exporter's own
// network namespace as host addresses (nta runs in the host's). It fails
// only when no view answers.
func ViewsResolver(d DockerViewer, l LibvirtViewer) Resolver { return viewsResolver{d, l} }

type viewsResolver struct {
	d DockerViewer
	l LibvirtViewer
}

func (r viewsResolver) Endpoints() (Endpoints, error) {
	e := Endpoints{Containers: map[netip.Addr]Container{}}
	var errs []error
	if r.d != nil {
		if v, err := r.d.View(); err != nil {
			errs = append(errs, err)
		} else {
			e = EndpointsFromDocker(v)
		}
	}
	if r.l != nil {
		if v, err := r.l.View(); err != nil {
			errs = append(errs, err)
		} else {
			for a, vm := range EndpointsFromLibvirt(v).Containers {
				if _, taken := e.Containers[a]; !taken {
					e.Containers[a] = vm
				}
			}
		}
	}
	if len(errs) > 0 && len(errs) == btoi(r.d != nil)+btoi(r.l != nil) {
		return Endpoints{}, errors.Join(errs...)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return Endpoints{}, fmt.Errorf("host addresses: %w", err)
	}
	e.HostAddrs = map[netip.Addr]bool{}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			e.HostAddrs[p.Addr().Unmap()] = true
		}
	}
	return e, nil
}

// EndpointsFromDocker returns the container addresses and published ports
// of a Docker view (HostAddrs nil).
func EndpointsFromDocker(v dockerview.View) Endpoints {
	e := Endpoints{Containers: map[netip.Addr]Container{}}
	for _, c := range v.Containers {
		ct := Container{ID: c.ID, Name: c.Name, Kind: KindContainer}
		for _, ep := range c.Endpoints {
			for _, s := range []string{ep.IPv4, ep.IPv6} {
				if a, err := netip.ParseAddr(s); err == nil {
					e.Containers[a.Unmap()] = ct
				}
			}
		}
		for _, p := range c.Ports {
			port := Port{Container: ct, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: ProtoNumber(p.Proto)}
			if a, err := netip.ParseAddr(p.HostIP); err == nil {
				port.HostIP = a
			}
			e.Ports = append(e.Ports, port)
		}
	}
	return e
}

// EndpointsFromLibvirt returns the VMs' addresses of a libvirt view: each
// DHCP lease whose MAC is a domain's NIC (Ports and HostAddrs nil).
func EndpointsFromLibvirt(v libvirtview.View) Endpoints {
	byMAC := map[string]Container{}
	for _, d := range v.Domains {
		for _, n := range d.NICs {
			byMAC[strings.ToLower(n.MAC)] = Container{ID: d.UUID, Name: d.Name, Kind: KindVM}
		}
	}
	e := Endpoints{Containers: map[netip.Addr]Container{}}
	for _, n := range v.Networks {
		for _, l := range n.Leases {
			vm, ok := byMAC[strings.ToLower(l.MAC)]
			if a, err := netip.ParseAddr(l.IP); ok && err == nil {
				e.Containers[a.Unmap()] = vm
			}
		}
	}
	return e
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fingerprint is a cheap identity of endpoints, so unchanged ones are not
// installed (and unattributed connections not retried) again.
func fingerprint(e Endpoints) string {
	var parts []string
	for a, c := range e.Containers {
		parts = append(parts, a.String()+"="+c.Kind+":"+c.ID+"/"+c.Name)
	}
	for _, p := range e.Ports {
		parts = append(parts, fmt.Sprintf("%s:%s:%d:%d:%d", p.Container.ID, p.HostIP, p.HostPort, p.ContainerPort, p.Proto))
	}
	for a := range e.HostAddrs {
		parts = append(parts, "h"+a.String())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
