package libvirtview

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"
)

// fakeLibvirt is the client interface over literal domains and networks.
// Each dial returns a session over the same state; disconnect ends it.
type fakeLibvirt struct {
	mu       sync.Mutex
	domains  []fakeDomain
	networks []fakeNetwork
	down     error         // dial fails with it
	hang     chan struct{} // non-nil: DomainGetXMLDesc blocks until closed
	dials    int

	lifecycle chan libvirt.DomainEventLifecycleMsg
	devices   chan any // device added/removed events of the current session
	disc      chan struct{}
	discs     int // Disconnect calls
}

type fakeDomain struct {
	dom   libvirt.Domain
	xml   string
	state int32
	gone  bool // listed, but vanished before its XML is read
}

type fakeNetwork struct {
	net    libvirt.Network
	xml    string
	active bool
	leases []libvirt.NetworkDhcpLease
}

func newFake() *fakeLibvirt { return &fakeLibvirt{} }

func (f *fakeLibvirt) dial(context.Context) (client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dials++
	if f.down != nil {
		return nil, f.down
	}
	f.lifecycle = make(chan libvirt.DomainEventLifecycleMsg, 16)
	f.devices = make(chan any, 16)
	f.disc = make(chan struct{})
	return &fakeSession{f: f, lifecycle: f.lifecycle, devices: f.devices, disc: f.disc}, nil
}

// event sends a lifecycle event for the domain called name, with the UUID
// libvirtd would put in it (uuid "": none, as in an old event).
func (f *fakeLibvirt) event(name, uuid string) {
	f.mu.Lock()
	ch := f.lifecycle
	f.mu.Unlock()
	dom := libvirt.Domain{Name: name}
	if uuid != "" {
		u, err := parseUUID(uuid)
		if err != nil {
			panic(err)
		}
		dom.UUID = u
	}
	ch <- libvirt.DomainEventLifecycleMsg{Dom: dom}
}

// deviceEvent sends a device-added (added) or device-removed event for
// the domain called name with UUID uuid, as libvirtd does on attach/detach.
func (f *fakeLibvirt) deviceEvent(added bool, name, uuid, alias string) {
	u, err := parseUUID(uuid)
	if err != nil {
		panic(err)
	}
	dom := libvirt.Domain{Name: name, UUID: u}
	f.mu.Lock()
	ch := f.devices
	f.mu.Unlock()
	if added {
		ch <- &libvirt.DomainEventCallbackDeviceAddedMsg{Dom: dom, DevAlias: alias}
		return
	}
	ch <- &libvirt.DomainEventCallbackDeviceRemovedMsg{Msg: libvirt.DomainEventDeviceRemovedMsg{Dom: dom, DevAlias: alias}}
}

func parseUUID(s string) (libvirt.UUID, error) {
	var u libvirt.UUID
	h := strings.ReplaceAll(s, "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != len(u) {
		return u, fmt.Errorf("bad uuid %q", s)
	}
	copy(u[:], b)
	return u, nil
}

// drop ends the current session as libvirtd's exit does.
func (f *fakeLibvirt) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.disc)
}

func (f *fakeLibvirt) setDomains(ds ...fakeDomain) {
	f.mu.Lock()
	f.domains = ds
	f.mu.Unlock()
}

type fakeSession struct {
	f         *fakeLibvirt
	lifecycle chan libvirt.DomainEventLifecycleMsg
	devices   chan any
	disc      chan struct{}
}

// forward relays in to a new channel until ctx ends or the session drops,
// then closes it, as go-libvirt's event goroutines do.
func forward[T any](ctx context.Context, in <-chan T, disc <-chan struct{}) <-chan T {
	out := make(chan T)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case <-disc:
				return
			case v := <-in:
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

var errNoDomain = libvirt.Error{Code: uint32(libvirt.ErrNoDomain), Message: "Domain not found"}

func (s *fakeSession) find(name string) (fakeDomain, bool) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for _, d := range s.f.domains {
		if d.dom.Name == name {
			return d, true
		}
	}
	return fakeDomain{}, false
}

func (s *fakeSession) ConnectListAllDomains(int32, libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	var out []libvirt.Domain
	for _, d := range s.f.domains {
		out = append(out, d.dom)
	}
	return out, uint32(len(out)), nil
}

func (s *fakeSession) DomainGetState(dom libvirt.Domain, _ uint32) (int32, int32, error) {
	d, ok := s.find(dom.Name)
	if !ok || d.gone {
		return 0, 0, errNoDomain
	}
	return d.state, 0, nil
}

func (s *fakeSession) DomainGetXMLDesc(dom libvirt.Domain, _ libvirt.DomainXMLFlags) (string, error) {
	s.f.mu.Lock()
	hang := s.f.hang
	s.f.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-s.disc:
			return "", errors.New("connection closed")
		}
	}
	d, ok := s.find(dom.Name)
	if !ok || d.gone {
		return "", errNoDomain
	}
	return d.xml, nil
}

func (s *fakeSession) ConnectListAllNetworks(int32, libvirt.ConnectListAllNetworksFlags) ([]libvirt.Network, uint32, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	var out []libvirt.Network
	for _, n := range s.f.networks {
		out = append(out, n.net)
	}
	return out, uint32(len(out)), nil
}

func (s *fakeSession) network(n libvirt.Network) (fakeNetwork, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for _, fn := range s.f.networks {
		if fn.net.Name == n.Name {
			return fn, nil
		}
	}
	return fakeNetwork{}, libvirt.Error{Code: uint32(libvirt.ErrNoNetwork), Message: "Network not found"}
}

func (s *fakeSession) NetworkGetXMLDesc(n libvirt.Network, _ uint32) (string, error) {
	fn, err := s.network(n)
	return fn.xml, err
}

func (s *fakeSession) NetworkIsActive(n libvirt.Network) (int32, error) {
	fn, err := s.network(n)
	if fn.active {
		return 1, err
	}
	return 0, err
}

func (s *fakeSession) NetworkGetDhcpLeases(n libvirt.Network, _ libvirt.OptString, _ int32, _ uint32) ([]libvirt.NetworkDhcpLease, uint32, error) {
	fn, err := s.network(n)
	return fn.leases, uint32(len(fn.leases)), err
}

func (s *fakeSession) LifecycleEvents(ctx context.Context) (<-chan libvirt.DomainEventLifecycleMsg, error) {
	return forward(ctx, s.lifecycle, s.disc), nil
}

// SubscribeEvents: both device event ids share one source channel; the
// watcher handles added and removed alike.
func (s *fakeSession) SubscribeEvents(ctx context.Context, id libvirt.DomainEventID, _ libvirt.OptDomain) (<-chan any, error) {
	if id != libvirt.DomainEventIDDeviceAdded {
		return forward(ctx, make(chan any), s.disc), nil
	}
	return forward(ctx, s.devices, s.disc), nil
}

func (s *fakeSession) Disconnected() <-chan struct{} { return s.disc }

func (s *fakeSession) Disconnect() error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.discs++
	return nil
}

// domainXML is a live domain with one bridge NIC per tap given.
func domainXML(name, uuid string, taps ...string) string {
	nics := ""
	for i, tap := range taps {
		nics += fmt.Sprintf(`<interface type='bridge'><mac address='52:54:00:00:%02x:%02x'/><source bridge='br0'/><target dev='%s'/><model type='virtio'/><alias name='net%d'/></interface>`,
			len(name)%256, i, tap, i)
	}
	return fmt.Sprintf(`<domain type='qemu' id='1'><name>%s</name><uuid>%s</uuid><memory>32768</memory><os><type>hvm</type></os><devices>%s</devices></domain>`, name, uuid, nics)
}
