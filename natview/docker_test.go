//go:build linux

package natview

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/libvirtview"
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
	if s := only(t, tb.snapshot(), Container{ID: web.ID, Name: "web", Kind: KindContainer}, Ingress, "198.18.0.2"); s.HostIP != "" || s.HostPort != 5353 {
		t.Errorf("%+v", s)
	}
	if fingerprint(e) != fingerprint(EndpointsFromDocker(v)) {
		t.Error("fingerprint of equal endpoints differs")
	}
}

type fakeDockerViewer struct {
	v   dockerview.View
	err error
}

func (f fakeDockerViewer) View() (dockerview.View, error) { return f.v, f.err }

type fakeLibvirtViewer struct {
	v   libvirtview.View
	err error
}

func (f fakeLibvirtViewer) View() (libvirtview.View, error) { return f.v, f.err }

// A VM's leased address (its NIC's MAC in a DHCP lease) makes its
// MASQUERADE'd egress its own, kind vm; the views resolver merges Docker and
// libvirt and fails only when neither answers.
func TestVMEgressIsAttributedByItsLease(t *testing.T) {
	lv := libvirtview.View{
		Domains: []libvirtview.Domain{{Name: "vm-lab", UUID: "4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
			NICs: []libvirtview.NIC{{MAC: "52:54:00:aa:bb:cc"}}}},
		Networks: []libvirtview.Network{{Name: "default", Leases: []libvirtview.Lease{
			{MAC: "52:54:00:AA:BB:CC", IP: "192.168.122.50"},
			{MAC: "52:54:00:00:00:99", IP: "192.168.122.99"}, // no domain owns it
		}}},
	}
	dv := dockerview.View{Containers: []dockerview.Container{{ID: web.ID, Name: "web", Endpoints: []dockerview.Endpoint{{IPv4: "172.17.0.2"}}}}}
	e, err := ViewsResolver(fakeDockerViewer{v: dv}, fakeLibvirtViewer{v: lv}).Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	vm := Container{ID: "4dea22b3-1d52-d8f3-2516-782e98ab3fa0", Name: "vm-lab", Kind: KindVM}
	if e.Containers[netip.MustParseAddr("192.168.122.50")] != vm || e.Containers[netip.MustParseAddr("172.17.0.2")].Name != "web" ||
		len(e.Containers) != 2 || len(e.HostAddrs) == 0 {
		t.Fatalf("endpoints %+v", e)
	}
	tb := newTable(8)
	tb.setEndpoints(e)
	// udp src=192.168.122.50 dst=198.18.0.53 sport=5000 dport=53 src=198.18.0.53 dst=198.18.0.1 sport=53 dport=5000
	f := flow(9, protoUDP, snat, "192.168.122.50", 5000, "198.18.0.53", 53, "198.18.0.53", 53, "198.18.0.1", 5000)
	tb.event(evDestroy, withCounters(f, 128, 2, 256, 2))
	if s := only(t, tb.snapshot(), vm, Egress, "198.18.0.53:53"); s.Transmitted != (Counters{128, 2}) || s.Received != (Counters{256, 2}) {
		t.Fatalf("%+v", s)
	}

	down := errors.New("down")
	if _, err := ViewsResolver(fakeDockerViewer{err: down}, fakeLibvirtViewer{v: lv}).Endpoints(); err != nil {
		t.Errorf("Docker down, libvirt up: %v", err)
	}
	if _, err := ViewsResolver(fakeDockerViewer{err: down}, fakeLibvirtViewer{err: down}).Endpoints(); !errors.Is(err, down) {
		t.Errorf("both down: %v", err)
	}
	if _, err := ViewsResolver(fakeDockerViewer{err: down}, nil).Endpoints(); !errors.Is(err, down) {
		t.Errorf("Docker down, no libvirt: %v", err)
	}
}
