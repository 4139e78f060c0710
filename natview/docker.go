package natview

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/tangfeixiong/nta/dockerview"
)

// DockerViewer is what [DockerResolver] reads: *dockerview.Watcher.
type DockerViewer interface {
	View() (dockerview.View, error)
}

// DockerResolver returns a [Resolver] over the cached Docker view: every
// container's endpoint addresses and published ports, and the addresses of
// the exporter's own network namespace as host addresses (nta runs in the
// host's).
func DockerResolver(d DockerViewer) Resolver { return dockerResolver{d} }

type dockerResolver struct{ d DockerViewer }

func (r dockerResolver) Endpoints() (Endpoints, error) {
	v, err := r.d.View()
	if err != nil {
		return Endpoints{}, err
	}
	e := EndpointsFromDocker(v)
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
		ct := Container{ID: c.ID, Name: c.Name}
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

// fingerprint is a cheap identity of endpoints, so unchanged ones are not
// installed (and unattributed connections not retried) again.
func fingerprint(e Endpoints) string {
	var parts []string
	for a, c := range e.Containers {
		parts = append(parts, a.String()+"="+c.ID+"/"+c.Name)
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
