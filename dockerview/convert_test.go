package dockerview

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-cmp/cmp"
)

func TestBridgeName(t *testing.T) {
	const id = "3f1c2a9b7d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef12"
	for _, tc := range []struct {
		name, driver, netName string
		opts                  map[string]string
		want                  string
	}{
		{"default bridge by option", "bridge", "bridge", map[string]string{optBridgeName: "docker0", optDefaultBridge: "true"}, "docker0"},
		{"default bridge without options", "bridge", "bridge", nil, "docker0"},
		{"default bridge renamed by --bridge", "bridge", "bridge", map[string]string{optBridgeName: "br0", optDefaultBridge: "true"}, "br0"},
		{"user network", "bridge", "appnet", nil, "br-3f1c2a9b7d4e"},
		{"user network with custom option", "bridge", "appnet", map[string]string{optBridgeName: "nta-br0"}, "nta-br0"},
		{"empty option ignored", "bridge", "appnet", map[string]string{optBridgeName: ""}, "br-3f1c2a9b7d4e"},
		{"host driver", "host", "host", nil, ""},
		{"null driver", "null", "none", nil, ""},
		{"macvlan", "macvlan", "mv", map[string]string{optBridgeName: "x"}, ""},
		{"overlay", "overlay", "ingress", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bridgeName(tc.driver, tc.netName, id, tc.opts); got != tc.want {
				t.Errorf("bridgeName = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNetworkFromAPI(t *testing.T) {
	in := network.Inspect{
		ID: "abcdef0123456789abcdef", Name: "dual", Driver: "bridge", Scope: "local", Internal: true,
		IPAM: network.IPAM{Config: []network.IPAMConfig{
			{Subnet: "10.1.0.0/24", Gateway: "10.1.0.1"},
			{Subnet: "fd00:1::/64", Gateway: "fd00:1::1"},
			{Subnet: "10.2.0.0/24"}, // gateway chosen by IPAM, not configured
		}},
		Labels: map[string]string{"com.docker.compose.project": "p"},
	}
	want := Network{
		ID: "abcdef0123456789abcdef", Name: "dual", Driver: "bridge", Scope: "local", Internal: true,
		Subnets:  []string{"10.1.0.0/24", "fd00:1::/64", "10.2.0.0/24"},
		Gateways: []string{"10.1.0.1", "fd00:1::1"},
		Bridge:   "br-abcdef012345",
		Labels:   map[string]string{"com.docker.compose.project": "p"},
	}
	if diff := cmp.Diff(want, networkFromAPI(in)); diff != "" {
		t.Errorf("networkFromAPI (-want +got):\n%s", diff)
	}
}

func TestContainerFromAPIRunning(t *testing.T) {
	in := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: "c0ffee", Name: "/web", Image: "sha256:1234",
			State:      &container.State{Status: "running", Running: true, Pid: 777},
			HostConfig: &container.HostConfig{NetworkMode: "default"},
		},
		Config: &container.Config{Image: "nginx:1", Labels: map[string]string{"a": "b"}},
		NetworkSettings: &container.NetworkSettings{
			NetworkSettingsBase: container.NetworkSettingsBase{
				SandboxKey: "/var/run/docker/netns/0123456789ab",
				Ports: nat.PortMap{
					"80/tcp":   {{HostIP: "0.0.0.0", HostPort: "8080"}, {HostIP: "::", HostPort: "8080"}},
					"53/udp":   {{HostIP: "127.0.0.1", HostPort: "5353"}},
					"443/tcp":  nil,                          // exposed, not published
					"9000/tcp": {{HostIP: "", HostPort: ""}}, // no host port assigned
				},
			},
			Networks: map[string]*network.EndpointSettings{
				"zeta": {NetworkID: "n2", EndpointID: "e2", IPAddress: "10.0.2.3", IPPrefixLen: 24,
					MacAddress: "02:42:0A:00:02:03", Gateway: "10.0.2.1",
					GlobalIPv6Address: "fd00::3", GlobalIPv6PrefixLen: 64, IPv6Gateway: "fd00::1"},
				"bridge": {NetworkID: "n1", EndpointID: "e1", IPAddress: "172.17.0.2", IPPrefixLen: 16,
					MacAddress: "02:42:ac:11:00:02", Gateway: "172.17.0.1"},
				"configured-only": {NetworkID: "n3"},
				"nil":             nil,
			},
		},
	}
	want := Container{
		ID: "c0ffee", Name: "web", Image: "nginx:1", ImageID: "sha256:1234", State: "running",
		NetworkMode: "bridge", SandboxKey: "/var/run/docker/netns/0123456789ab", PID: 777,
		Endpoints: []Endpoint{
			{NetworkID: "n1", Network: "bridge", EndpointID: "e1", IPv4: "172.17.0.2", IPv4PrefixLen: 16,
				MAC: "02:42:ac:11:00:02", Gateway: "172.17.0.1"},
			{NetworkID: "n2", Network: "zeta", EndpointID: "e2", IPv4: "10.0.2.3", IPv4PrefixLen: 24,
				IPv6: "fd00::3", IPv6PrefixLen: 64, MAC: "02:42:0a:00:02:03", Gateway: "10.0.2.1", IPv6Gateway: "fd00::1"},
		},
		Ports: []Port{
			{HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53, Proto: "udp"},
			{HostIP: "0.0.0.0", HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
			{HostIP: "::", HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
		},
		Labels: map[string]string{"a": "b"},
	}
	if diff := cmp.Diff(want, containerFromAPI(in)); diff != "" {
		t.Errorf("containerFromAPI (-want +got):\n%s", diff)
	}
}

func TestContainerFromAPIStopped(t *testing.T) {
	in := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: "dead", Name: "/db",
			State:      &container.State{Status: "exited", ExitCode: 137},
			HostConfig: &container.HostConfig{NetworkMode: "container:web"},
		},
		NetworkSettings: &container.NetworkSettings{
			// Docker keeps stale endpoint data of a stopped container in some versions.
			NetworkSettingsBase: container.NetworkSettingsBase{SandboxKey: "/var/run/docker/netns/stale"},
			Networks: map[string]*network.EndpointSettings{
				"bridge": {NetworkID: "n1", EndpointID: "stale", IPAddress: "172.17.0.9"},
			},
		},
	}
	want := Container{ID: "dead", Name: "db", State: "exited", NetworkMode: "container:web"}
	if diff := cmp.Diff(want, containerFromAPI(in)); diff != "" {
		t.Errorf("containerFromAPI (-want +got):\n%s", diff)
	}
	// Partial answers must not panic.
	_ = containerFromAPI(container.InspectResponse{})
	_ = containerFromAPI(container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{}})
}

func TestNormalizeNetworkMode(t *testing.T) {
	for in, want := range map[string]string{
		"": "bridge", "default": "bridge", "bridge": "bridge", "host": "host", "none": "none",
		"container:abc": "container:abc", "appnet": "appnet",
	} {
		if got := normalizeNetworkMode(in); got != want {
			t.Errorf("normalizeNetworkMode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBuildView(t *testing.T) {
	now := time.Unix(1700000000, 0)
	nets := map[string]Network{
		"2": {ID: "2", Name: "b"}, "1": {ID: "1", Name: "a"}, "3": {ID: "3", Name: "c"},
	}
	ctrs := map[string]Container{
		"id-web":     {ID: "id-web", Name: "web", NetworkMode: "bridge"},
		"id-sidecar": {ID: "id-sidecar", Name: "sidecar", NetworkMode: "container:web"},
		"id-byid":    {ID: "id-byid", Name: "byid", NetworkMode: "container:id-web"},
		"id-orphan":  {ID: "id-orphan", Name: "orphan", NetworkMode: "container:gone"},
	}
	v := buildView(nets, ctrs, now)
	if got := names(v.Networks, func(n Network) string { return n.Name }); !cmp.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("networks %v", got)
	}
	if got := names(v.Containers, func(c Container) string { return c.Name + "=" + c.NetworkMode }); !cmp.Equal(got, []string{
		"byid=container:id-web", "orphan=container:gone", "sidecar=container:id-web", "web=bridge",
	}) {
		t.Errorf("containers %v", got)
	}
	if !v.Synced.Equal(now) {
		t.Errorf("Synced %v", v.Synced)
	}
	if ctrs["id-sidecar"].NetworkMode != "container:web" {
		t.Errorf("buildView modified its input")
	}
}
