//go:build linux

package natview

import (
	"net/netip"
	"testing"

	"github.com/tangfeixiong/nta/dockerview"
)

// The Docker view becomes attribution input: every endpoint address (v4,
// v6) of every container, and its published ports with their bindings.
func TestEndpointsFromDockerView(t *testing.T) {
	v := dockerview.View{Containers: []dockerview.Container{
		{ID: web.ID, Name: "web",
			Endpoints: []dockerview.Endpoint{{IPv4: "172.17.0.2", IPv6: "fd00:17::2"}, {IPv4: "172.29.0.5"}},
			Ports: []dockerview.Port{
				{HostIP: "0.0.0.0", HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
				{HostIP: "::", HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
				{HostIP: "", HostPort: 5353, ContainerPort: 53, Proto: "udp"},
			}},
		{ID: batch.ID, Name: "batch", Endpoints: []dockerview.Endpoint{{IPv4: "172.17.0.3"}}},
		{ID: "stopped", Name: "stopped"},
	}}
	e := EndpointsFromDocker(v)
	for a, want := range map[string]string{"172.17.0.2": "web", "fd00:17::2": "web", "172.29.0.5": "web", "172.17.0.3": "batch"} {
		if got := e.Containers[netip.MustParseAddr(a)]; got.Name != want {
			t.Errorf("%s → %q, want %q", a, got.Name, want)
		}
	}
	if len(e.Containers) != 4 || len(e.Ports) != 3 {
		t.Fatalf("%d addresses, %d ports: %+v", len(e.Containers), len(e.Ports), e)
	}
	if p := e.Ports[2]; p.HostIP.IsValid() || p.Proto != protoUDP || p.Container.Name != "web" {
		t.Errorf("binding without address: %+v", p)
	}
	// The result attributes a connection end to end.
	tb := newTable(8)
	tb.setEndpoints(e)
	f := flow(1, protoUDP, dnat, "198.18.0.2", 4000, "198.18.0.1", 5353, "172.17.0.2", 53, "198.18.0.2", 4000)
	tb.event(evNew, &f)
	if s := only(t, tb.snapshot(), Container{ID: web.ID, Name: "web"}, Ingress, "198.18.0.2"); s.HostIP != "" || s.HostPort != 5353 {
		t.Errorf("%+v", s)
	}
	if fingerprint(e) != fingerprint(EndpointsFromDocker(v)) {
		t.Error("fingerprint of equal endpoints differs")
	}
}
