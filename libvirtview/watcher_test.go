package libvirtview

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

func startFake(t *testing.T, f *fakeLibvirt, timeout time.Duration) *Watcher {
	t.Helper()
	w, err := New(Options{Timeout: timeout, Resync: time.Hour, dial: f.dial})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// waitView polls View until cond holds (bounded).
func waitView(t *testing.T, w *Watcher, what string, cond func(View, error) bool) View {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := w.View()
		if cond(v, err) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last view %+v, err %v", what, v, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func names(v View) string {
	var s []string
	for _, d := range v.Domains {
		s = append(s, d.Name)
	}
	return strings.Join(s, ",")
}

func TestWatcherSyncEventsAndBadInput(t *testing.T) {
	f := newFake()
	f.networks = []fakeNetwork{{net: libvirt.Network{Name: "ntnet"}, active: true,
		xml:    `<network><name>ntnet</name><uuid>9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d</uuid><bridge name='virbr7'/><ip address='198.18.77.1' prefix='24'/></network>`,
		leases: []libvirt.NetworkDhcpLease{{Ipaddr: "198.18.77.10", Prefix: 24, Mac: libvirt.OptString{"52:54:00:AA:00:01"}, Expirytime: 1796300000}}}}
	f.setDomains(
		fakeDomain{dom: libvirt.Domain{Name: "vm-b"}, state: 1, xml: domainXML("vm-b", "22222222-0000-4000-8000-000000000002", "vnet1")},
		fakeDomain{dom: libvirt.Domain{Name: "vm-a"}, state: 5, xml: `<domain type='qemu'><name>vm-a</name><uuid>11111111-0000-4000-8000-000000000001</uuid><devices>` +
			`<interface type='network'><mac address='52:54:00:aa:00:01'/><source network='ntnet'/></interface></devices></domain>`},
		fakeDomain{dom: libvirt.Domain{Name: "vm-broken", UUID: mustUUID("66666666-0000-4000-8000-000000000006"), ID: 9}, state: 1, xml: "<domain type='qemu'><name>vm-broken"},
		fakeDomain{dom: libvirt.Domain{Name: "vm-gone"}, state: 1, gone: true},
	)
	w := startFake(t, f, time.Second)
	v := waitView(t, w, "first sync", func(v View, err error) bool { return err == nil })
	if names(v) != "vm-a,vm-b,vm-broken" {
		t.Fatalf("domains %q, want vm-a,vm-b,vm-broken (the vanished domain left out)", names(v))
	}
	if v.ParseErrors != 1 {
		t.Errorf("ParseErrors = %d, want 1 (the vanished domain is a lost race, not bad input)", v.ParseErrors)
	}
	if st := w.Stats(); st.ParseErrors != 1 || st.Vanished != 1 || st.ReadErrors != 0 || st.DuplicateNICs != 0 {
		t.Errorf("Stats %+v, want 1 parse error and 1 vanished", st)
	}
	if b := v.Domains[2]; !b.Partial || b.State != "running" || len(b.NICs) != 0 || b.ID != 9 || b.UUID != "66666666-0000-4000-8000-000000000006" {
		t.Errorf("vm-broken %+v: want kept as Partial, running, without NICs", b)
	}
	a := v.Domains[0]
	if a.State != "shutoff" || a.NICs[0].Bridge != "virbr7" || a.NICs[0].Network != "ntnet" {
		t.Errorf("vm-a %+v: want shutoff with its network's bridge filled in", a)
	}
	if l := v.Networks[0].Leases; len(l) != 1 || l[0].MAC != "52:54:00:aa:00:01" || l[0].IP != "198.18.77.10" || l[0].Expiry.Unix() != 1796300000 {
		t.Errorf("leases %+v", l)
	}

	// A domain started and one destroyed: the events update the view.
	f.setDomains(
		fakeDomain{dom: libvirt.Domain{Name: "vm-b"}, state: 1, xml: domainXML("vm-b", "22222222-0000-4000-8000-000000000002", "vnet1")},
		fakeDomain{dom: libvirt.Domain{Name: "vm-c"}, state: 1, xml: domainXML("vm-c", "33333333-0000-4000-8000-000000000003", "vnet2", "vnet3")},
	)
	f.event("vm-c", "33333333-0000-4000-8000-000000000003")
	f.event("vm-a", "11111111-0000-4000-8000-000000000001") // looked up again: gone
	f.event("vm-b", "")                                     // no UUID in the event: found by name
	f.event("vm-broken", "66666666-0000-4000-8000-000000000006")
	v = waitView(t, w, "events", func(v View, err error) bool { return err == nil && names(v) == "vm-b,vm-c" })
	if len(v.Domains[1].NICs) != 2 {
		t.Errorf("vm-c NICs %+v", v.Domains[1].NICs)
	}
	// Callers own their copy.
	v.Domains[1].NICs[0].Target = "mutated"
	if v2, _ := w.View(); v2.Domains[1].NICs[0].Target != "vnet2" {
		t.Error("View shares NIC slices with the cache")
	}
}

func TestWatcherReconnects(t *testing.T) {
	f := newFake()
	f.setDomains(fakeDomain{dom: libvirt.Domain{Name: "vm"}, state: 1, xml: domainXML("vm", "44444444-0000-4000-8000-000000000004", "vnet0")})
	f.down = errors.New("dial unix /var/run/libvirt/libvirt-sock: connect: no such file or directory")
	w := startFake(t, f, time.Second)
	_, err := w.View()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "start libvirtd") {
		t.Fatalf("libvirtd absent: View err = %v, want ErrUnavailable saying what to do", err)
	}
	f.mu.Lock()
	f.down = nil
	f.mu.Unlock()
	waitView(t, w, "recovery after libvirtd starts", func(v View, err error) bool { return err == nil && names(v) == "vm" })

	f.drop() // libvirtd exits
	f.mu.Lock()
	f.down = errors.New("connection refused")
	f.mu.Unlock()
	waitView(t, w, "unavailable after the connection drops", func(v View, err error) bool { return errors.Is(err, ErrUnavailable) })
	f.mu.Lock()
	f.down = nil
	dials := f.dials
	f.mu.Unlock()
	waitView(t, w, "recovery on a fresh client", func(v View, err error) bool { return err == nil && names(v) == "vm" })
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dials <= dials {
		t.Error("no new dial after the drop")
	}
}

// A libvirtd that stops answering (go-libvirt has no deadline) makes the
// session end at Timeout; View never waits on it.
func TestWatcherCallDeadline(t *testing.T) {
	f := newFake()
	f.setDomains(fakeDomain{dom: libvirt.Domain{Name: "vm"}, state: 1, xml: domainXML("vm", "55555555-0000-4000-8000-000000000005", "vnet0")})
	f.hang = make(chan struct{})
	w := startFake(t, f, 50*time.Millisecond)
	begin := time.Now()
	v := waitView(t, w, "hung libvirtd", func(v View, err error) bool {
		return err != nil && strings.Contains(err.Error(), "did not answer in time")
	})
	_ = v
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("took %s to notice a hung libvirtd", took)
	}
	for range 100 {
		start := time.Now()
		w.View()
		if d := time.Since(start); d > 10*time.Millisecond {
			t.Fatalf("View took %s while libvirtd hangs", d)
		}
	}
	f.mu.Lock()
	close(f.hang)
	f.hang = nil
	f.mu.Unlock()
	waitView(t, w, "recovery", func(v View, err error) bool { return err == nil && names(v) == "vm" })
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{URI: "qemu"}, {Timeout: time.Microsecond}, {Resync: time.Millisecond}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}

// BenchmarkSync500Domains builds the view of 500 domains with two NICs
// each from their XML (through the fake client): the cost of a full resync
// on the watcher's side.
//
//	go test -run '^$' -bench Sync500 -benchmem ./libvirtview/
func BenchmarkSync500Domains(b *testing.B) {
	f := newFake()
	var ds []fakeDomain
	for i := range 500 {
		name := fmt.Sprintf("vm%03d", i)
		ds = append(ds, fakeDomain{dom: libvirt.Domain{Name: name}, state: 1,
			xml: domainXML(name, fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), fmt.Sprintf("vnet%d", 2*i), fmt.Sprintf("vnet%d", 2*i+1))})
	}
	f.setDomains(ds...)
	w, err := New(Options{dial: f.dial})
	if err != nil {
		b.Fatal(err)
	}
	c, _ := f.dial(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := w.sync(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	v, _ := w.View()
	if len(v.Domains) != 500 {
		b.Fatalf("%d domains", len(v.Domains))
	}
}

func mustUUID(s string) libvirt.UUID {
	u, err := parseUUID(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestFormatUUID(t *testing.T) {
	const s = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	u, err := parseUUID(s)
	if err != nil || formatUUID(u) != s {
		t.Fatalf("formatUUID(parse(%s)) = %s, %v", s, formatUUID(u), err)
	}
}
