// Package dockerview keeps a cached view of Docker networks and containers,
// read from the Docker Engine API and kept current from the engine's event
// stream plus a periodic full resync.
//
// A Prometheus scrape reads the cache with [Watcher.View] and never calls the
// Engine API itself, so the cost of a scrape does not grow with the number of
// containers and a hung dockerd cannot hang a scrape.
//
// Typical use:
//
//	w, err := dockerview.New(dockerview.Options{Logger: logger})
//	if err != nil { ... }
//	defer w.Close()
//	go w.Run(ctx)
//	...
//	v, err := w.View() // on each scrape; err wraps ErrUnavailable when dockerd is down
package dockerview

import (
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// Network is one Docker network as reported by the Engine API
// (GET /networks, `docker network inspect`).
type Network struct {
	ID     string // full network id
	Name   string
	Driver string // "bridge", "host", "null", "overlay", "macvlan", ...
	Scope  string // "local", "swarm", "global"
	// Subnets are the CIDRs from the network's IPAM config, in config order.
	Subnets []string
	// Gateways are the gateway addresses from the IPAM config (without prefix).
	Gateways []string
	// Bridge is the Linux bridge device behind a "bridge"-driver network:
	// the option com.docker.network.bridge.name when set, "docker0" for the
	// default network named "bridge", else "br-" + the first 12 characters of
	// the id. It is "" for every other driver.
	Bridge   string
	Internal bool              // no external connectivity (docker network create --internal)
	Labels   map[string]string // network labels, nil when none
}

// Endpoint is a container's attachment to one network
// (NetworkSettings.Networks[name] in `docker inspect`).
type Endpoint struct {
	NetworkID     string // full network id
	Network       string // network name
	EndpointID    string
	IPv4          string // address without prefix, "" when none
	IPv6          string // global IPv6 address without prefix, "" when none
	IPv4PrefixLen int
	IPv6PrefixLen int
	MAC           string // lower-case, "" when none
	Gateway       string // IPv4 gateway, "" when none
	IPv6Gateway   string // "" when none
}

// Port is a published container port with its host binding.
type Port struct {
	HostIP        string // "0.0.0.0", "::", "127.0.0.1", ...; "" means all addresses
	HostPort      uint16
	ContainerPort uint16
	Proto         string // "tcp", "udp" or "sctp"
}

// Container is one Docker container as reported by `docker inspect`.
type Container struct {
	ID      string
	Name    string // without the leading "/"
	Image   string // image reference as given when the container was created (Config.Image)
	ImageID string // image id ("sha256:...")
	State   string // "created", "running", "paused", "restarting", "exited", "dead", ...
	// NetworkMode is HostConfig.NetworkMode: "bridge", "host", "none",
	// "container:<id>" or a network name. The legacy value "default" is
	// reported as "bridge"; "container:<name>" is resolved to the id when the
	// other container is known.
	NetworkMode string
	// SandboxKey is the network namespace path of a running container,
	// e.g. /var/run/docker/netns/abc123; "" when not running and for
	// NetworkMode "container:<id>" (the namespace is the other container's).
	SandboxKey string
	PID        int        // pid of the container's init process in the host pid namespace, 0 when not running
	Endpoints  []Endpoint // sorted by network name; empty when not running
	Ports      []Port     // published ports only (with a host binding), sorted
	Labels     map[string]string
}

// View is a consistent snapshot of the cached Docker state.
type View struct {
	Networks   []Network   // sorted by name
	Containers []Container // sorted by name
	Synced     time.Time   // time of last successful full sync
}

// Options configure a [Watcher]. The zero value is usable.
type Options struct {
	// Host is the Engine API address, e.g. unix:///var/run/docker.sock or
	// tcp://10.0.0.1:2375. "" uses DOCKER_HOST, else unix:///var/run/docker.sock.
	Host string
	// Resync is the interval of full re-lists that repair anything the event
	// stream missed. Default 30s.
	Resync time.Duration
	// Timeout is the deadline of every single API call. Default 5s.
	Timeout time.Duration
	// Logger receives state transitions; default slog.Default().
	Logger *slog.Logger
}

// ErrUnavailable is wrapped by the errors of [Watcher.View] when Docker
// cannot be reached or has not been synced yet; the error text says what to
// do (start dockerd, check socket permissions or DOCKER_HOST).
var ErrUnavailable = errors.New("docker engine unavailable")

// Defaults for [Options].
const (
	DefaultResync  = 30 * time.Second
	DefaultTimeout = 5 * time.Second
)

// Network returns the network with the given name or id.
func (v View) Network(nameOrID string) (Network, bool) {
	for _, n := range v.Networks {
		if n.Name == nameOrID || n.ID == nameOrID {
			return n, true
		}
	}
	return Network{}, false
}

// Container returns the container with the given name or full id.
func (v View) Container(nameOrID string) (Container, bool) {
	for _, c := range v.Containers {
		if c.Name == nameOrID || c.ID == nameOrID {
			return c, true
		}
	}
	return Container{}, false
}

// clone returns a deep copy of v that shares no memory with it.
func (v View) clone() View {
	out := View{Synced: v.Synced}
	if v.Networks != nil {
		out.Networks = make([]Network, len(v.Networks))
		for i, n := range v.Networks {
			out.Networks[i] = n.clone()
		}
	}
	if v.Containers != nil {
		out.Containers = make([]Container, len(v.Containers))
		for i, c := range v.Containers {
			out.Containers[i] = c.clone()
		}
	}
	return out
}

func (n Network) clone() Network {
	n.Subnets = slices.Clone(n.Subnets)
	n.Gateways = slices.Clone(n.Gateways)
	n.Labels = maps.Clone(n.Labels)
	return n
}

func (c Container) clone() Container {
	c.Endpoints = slices.Clone(c.Endpoints)
	c.Ports = slices.Clone(c.Ports)
	c.Labels = maps.Clone(c.Labels)
	return c
}
