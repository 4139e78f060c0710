package libvirtview

import (
	"fmt"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// A NIC hot-plugged or unplugged (virsh attach-interface/detach-interface)
// shows in the view from the device events alone, one domain re-read.
func TestDeviceEventsRefreshThatDomain(t *testing.T) {
	const uuid = "77777777-0000-4000-8000-000000000007"
	f := newFake()
	f.setDomains(fakeDomain{dom: libvirt.Domain{Name: "vm", UUID: mustUUID(uuid)}, state: 1, xml: domainXML("vm", uuid, "vnet0")})
	w := startFake(t, f, time.Second)
	waitView(t, w, "first sync", func(v View, err error) bool { return err == nil && len(v.Domains) == 1 })

	f.setDomains(fakeDomain{dom: libvirt.Domain{Name: "vm", UUID: mustUUID(uuid)}, state: 1, xml: domainXML("vm", uuid, "vnet0", "vnet7")})
	f.deviceEvent(true, "vm", uuid, "net1")
	v := waitView(t, w, "hot-plugged NIC", func(v View, err error) bool { return err == nil && len(v.Domains[0].NICs) == 2 })
	if v.Domains[0].NICs[1].Target != "vnet7" {
		t.Errorf("NICs %+v", v.Domains[0].NICs)
	}
	f.setDomains(fakeDomain{dom: libvirt.Domain{Name: "vm", UUID: mustUUID(uuid)}, state: 1, xml: domainXML("vm", uuid, "vnet0")})
	f.deviceEvent(false, "vm", uuid, "net1")
	waitView(t, w, "unplugged NIC", func(v View, err error) bool { return err == nil && len(v.Domains[0].NICs) == 1 })

	// An event for a domain gone before it is read drops it, no error.
	f.setDomains()
	f.deviceEvent(false, "vm", uuid, "net0")
	waitView(t, w, "vanished domain dropped", func(v View, err error) bool { return err == nil && len(v.Domains) == 0 })
	if st := w.Stats(); st.Vanished != 1 {
		t.Errorf("Stats %+v, want 1 vanished", st)
	}
}

// Two NICs of one domain with the same key never both reach the view, and
// a running domain's tap NIC without target is kept and counted.
func TestDuplicateAndTargetlessNICs(t *testing.T) {
	const uuid = "88888888-0000-4000-8000-000000000008"
	x := `<domain type='qemu' id='4'><name>vm</name><uuid>` + uuid + `</uuid><devices>
<interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/><target dev='vnet0'/></interface>
<interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/><target dev='vnet0'/></interface>
<interface type='bridge'><mac address='52:54:00:00:00:03'/><source bridge='br0'/><alias name='net2'/></interface>
</devices></domain>`
	f := newFake()
	f.setDomains(fakeDomain{dom: libvirt.Domain{Name: "vm", UUID: mustUUID(uuid)}, state: 1, xml: x})
	w := startFake(t, f, time.Second)
	v := waitView(t, w, "first sync", func(v View, err error) bool { return err == nil && len(v.Domains) == 1 })
	var keys []string
	for _, n := range v.Domains[0].NICs {
		keys = append(keys, n.Key()+"="+n.MAC)
	}
	if got := strings.Join(keys, ","); got != "vnet0=52:54:00:00:00:01,net2=52:54:00:00:00:03" {
		t.Errorf("NICs %s: want the first vnet0 and the targetless net2", got)
	}
	if st := w.Stats(); st.DuplicateNICs != 1 || st.NICsWithoutTarget != 1 || v.ParseErrors != 1 {
		t.Errorf("Stats %+v, ParseErrors %d: want 1 duplicate, 1 without target, ParseErrors 1", st, v.ParseErrors)
	}
}

// recordedDomains are n copies of testdata/domain-running.xml (libvirt 9.0,
// three NICs, controllers, seclabel) with their own name, UUID and taps.
func recordedDomains(tb testing.TB, n int) []fakeDomain {
	x := readTestdata(tb, "domain-running.xml")
	ds := make([]fakeDomain, 0, n)
	for i := range n {
		name, uuid := fmt.Sprintf("vm%03d", i), fmt.Sprintf("%08x-4f89-41d3-9a0c-0305e82c3301", i)
		r := strings.NewReplacer("ntrec-vm", name, "3F2504E0-4F89-41D3-9A0C-0305E82C3301", uuid,
			"'vnet2'", fmt.Sprintf("'vnet%d'", 3*i), "'vnet3'", fmt.Sprintf("'vnet%d'", 3*i+1), "'vnet4'", fmt.Sprintf("'vnet%d'", 3*i+2))
		ds = append(ds, fakeDomain{dom: libvirt.Domain{Name: name, UUID: mustUUID(uuid)}, state: 1, xml: r.Replace(x)})
	}
	return ds
}

// BenchmarkParse500Domains parses the recorded live XML of 500 domains
// (three NICs each): the parsing share of a full resync.
//
//	go test -run '^$' -bench 500Domains -benchmem ./libvirtview/
func BenchmarkParse500Domains(b *testing.B) {
	ds := recordedDomains(b, 500)
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range ds {
			if _, _, err := parseDomain(d.xml, "running"); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkBuildRecorded500Domains builds the view of 500 recorded domains
// from nothing: list, state, XML, parse (no parse cache), networks, publish.
// This is the first sync after start or a reconnect.
func BenchmarkBuildRecorded500Domains(b *testing.B) {
	f := newFake()
	f.setDomains(recordedDomains(b, 500)...)
	c, _ := f.dial(b.Context())
	b.ReportAllocs()
	var w *Watcher
	for b.Loop() {
		b.StopTimer()
		var err error
		if w, err = New(Options{dial: f.dial}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := w.sync(b.Context(), c); err != nil {
			b.Fatal(err)
		}
	}
	if v, _ := w.View(); len(v.Domains) != 500 || len(v.Domains[0].NICs) != 3 {
		b.Fatalf("%d domains", len(v.Domains))
	}
}

// BenchmarkSyncRecorded500Domains is a full resync of 500 recorded domains
// through the fake client: list, state, XML, parse, networks, publish.
func BenchmarkSyncRecorded500Domains(b *testing.B) {
	f := newFake()
	f.setDomains(recordedDomains(b, 500)...)
	w, err := New(Options{dial: f.dial})
	if err != nil {
		b.Fatal(err)
	}
	c, _ := f.dial(b.Context())
	b.ReportAllocs()
	for b.Loop() {
		if err := w.sync(b.Context(), c); err != nil {
			b.Fatal(err)
		}
	}
	if v, _ := w.View(); len(v.Domains) != 500 || len(v.Domains[0].NICs) != 3 {
		b.Fatalf("%d domains", len(v.Domains))
	}
}
