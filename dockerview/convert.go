package dockerview

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// Bridge driver options that name the Linux bridge device.
const (
	optBridgeName    = "com.docker.network.bridge.name"
	optDefaultBridge = "com.docker.network.bridge.default_bridge"
)

// networkFromAPI converts one entry of GET /networks into a Network.
func networkFromAPI(n network.Inspect) Network {
	out := Network{
		ID:       n.ID,
		Name:     n.Name,
		Driver:   n.Driver,
		Scope:    n.Scope,
		Bridge:   bridgeName(n.Driver, n.Name, n.ID, n.Options),
		Internal: n.Internal,
	}
	for _, c := range n.IPAM.Config {
		if c.Subnet != "" {
			out.Subnets = append(out.Subnets, c.Subnet)
		}
		if c.Gateway != "" {
			out.Gateways = append(out.Gateways, c.Gateway)
		}
	}
	if len(n.Labels) > 0 {
		out.Labels = maps.Clone(n.Labels)
	}
	return out
}

// bridgeName returns the Linux bridge device behind a network of the
// "bridge" driver, following libnetwork: the option
// com.docker.network.bridge.name wins, the default network "bridge" is
// docker0, any other network is "br-" + the first 12 characters of its id.
// It returns "" for other drivers.
func bridgeName(driver, name, id string, options map[string]string) string {
	if driver != "bridge" {
		return ""
	}
	if b := options[optBridgeName]; b != "" {
		return b
	}
	if name == "bridge" || options[optDefaultBridge] == "true" {
		return "docker0"
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return "br-" + id
}

// containerFromAPI converts the answer of GET /containers/{id}/json
// (`docker inspect`) into a Container. A container that is not running has
// no SandboxKey, PID or endpoints; the network names in the inspect answer
// are then only its configuration.
func containerFromAPI(c container.InspectResponse) Container {
	var out Container
	if c.ContainerJSONBase != nil {
		out.ID = c.ID
		out.Name = strings.TrimPrefix(c.Name, "/")
		out.ImageID = c.Image
		if c.HostConfig != nil {
			out.NetworkMode = normalizeNetworkMode(string(c.HostConfig.NetworkMode))
		}
	}
	running := false
	if c.ContainerJSONBase != nil && c.State != nil {
		out.State = string(c.State.Status)
		running = c.State.Running
		if running {
			out.PID = c.State.Pid
		}
	}
	if c.Config != nil {
		out.Image = c.Config.Image
		if len(c.Config.Labels) > 0 {
			out.Labels = maps.Clone(c.Config.Labels)
		}
	}
	if ns := c.NetworkSettings; ns != nil {
		out.Ports = portsFromMap(ns.Ports)
		if running {
			out.SandboxKey = ns.SandboxKey
			out.Endpoints = endpointsFromAPI(ns.Networks)
		}
	}
	return out
}

// normalizeNetworkMode maps the legacy HostConfig.NetworkMode "default"
// (or empty) to "bridge", the default network on Linux.
func normalizeNetworkMode(m string) string {
	if m == "" || m == "default" {
		return "bridge"
	}
	return m
}

// endpointsFromAPI converts NetworkSettings.Networks into endpoints sorted by
// network name. Entries without an endpoint id (configured, not attached)
// are skipped.
func endpointsFromAPI(nets map[string]*network.EndpointSettings) []Endpoint {
	var out []Endpoint
	for name, es := range nets {
		if es == nil || es.EndpointID == "" {
			continue
		}
		out = append(out, Endpoint{
			NetworkID:     es.NetworkID,
			Network:       name,
			EndpointID:    es.EndpointID,
			IPv4:          es.IPAddress,
			IPv6:          es.GlobalIPv6Address,
			IPv4PrefixLen: es.IPPrefixLen,
			IPv6PrefixLen: es.GlobalIPv6PrefixLen,
			MAC:           strings.ToLower(es.MacAddress),
			Gateway:       es.Gateway,
			IPv6Gateway:   es.IPv6Gateway,
		})
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return strings.Compare(a.Network, b.Network) })
	return out
}

// portsFromMap returns the published ports of NetworkSettings.Ports: one Port
// per host binding, unpublished (exposed only) ports skipped.
func portsFromMap(pm nat.PortMap) []Port {
	var out []Port
	for p, bindings := range pm {
		cport, err := strconv.ParseUint(p.Port(), 10, 16)
		if err != nil {
			continue
		}
		for _, b := range bindings {
			hport, err := strconv.ParseUint(b.HostPort, 10, 16)
			if err != nil || hport == 0 {
				continue
			}
			out = append(out, Port{
				HostIP:        b.HostIP,
				HostPort:      uint16(hport),
				ContainerPort: uint16(cport),
				Proto:         p.Proto(),
			})
		}
	}
	slices.SortFunc(out, comparePorts)
	return out
}

func comparePorts(a, b Port) int {
	return cmp.Or(
		cmp.Compare(a.ContainerPort, b.ContainerPort),
		strings.Compare(a.Proto, b.Proto),
		strings.Compare(a.HostIP, b.HostIP),
		cmp.Compare(a.HostPort, b.HostPort),
	)
}

// buildView assembles a sorted View from the cache maps (keyed by id). The
// result shares no memory with the maps' values. NetworkMode
// "container:<name>" is resolved to "container:<id>" when the name is known.
func buildView(nets map[string]Network, ctrs map[string]Container, synced time.Time) View {
	v := View{
		Networks:   make([]Network, 0, len(nets)),
		Containers: make([]Container, 0, len(ctrs)),
		Synced:     synced,
	}
	for _, n := range nets {
		v.Networks = append(v.Networks, n.clone())
	}
	byName := make(map[string]string, len(ctrs))
	for _, c := range ctrs {
		byName[c.Name] = c.ID
	}
	for _, c := range ctrs {
		c = c.clone()
		if ref, ok := strings.CutPrefix(c.NetworkMode, "container:"); ok {
			if id, ok := byName[strings.TrimPrefix(ref, "/")]; ok {
				c.NetworkMode = "container:" + id
			}
		}
		v.Containers = append(v.Containers, c)
	}
	slices.SortFunc(v.Networks, func(a, b Network) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	slices.SortFunc(v.Containers, func(a, b Container) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	return v
}
