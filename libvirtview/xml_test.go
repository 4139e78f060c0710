package libvirtview

import (
	"os"
	"reflect"
	"testing"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// domain-running.xml is `virsh dumpxml` of a live VM on this lab's
// libvirt 9.0: a bridge NIC, a network NIC (libvirt fills in the bridge),
// and an Open vSwitch port with its interfaceid.
func TestParseDomainRunning(t *testing.T) {
	d, dups, err := parseDomain(readTestdata(t, "domain-running.xml"), "running")
	if err != nil || dups != 0 {
		t.Fatalf("parseDomain: %v, %d dups", err, dups)
	}
	want := Domain{Name: "ntrec-vm", UUID: "3f2504e0-4f89-41d3-9a0c-0305e82c3301", ID: 3, State: "running", Type: "qemu", NICs: []NIC{
		{Type: "bridge", MAC: "52:54:00:7e:00:01", Target: "vnet2", Bridge: "ntrec-br0", Model: "virtio", Alias: "net0"},
		{Type: "network", MAC: "52:54:00:7e:00:02", Target: "vnet3", Bridge: "ntrecvirbr0", Network: "ntrec-net", Model: "e1000", Alias: "net1"},
		{Type: "bridge", MAC: "52:54:00:7e:00:03", Target: "vnet4", Bridge: "ntrecovs", Model: "virtio", Alias: "net2",
			VirtualPort: "openvswitch", InterfaceID: "0b4c1a5e-6f7d-4e3a-9c8b-7a6d5e4f3c2b"},
	}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("domain\n got %+v\nwant %+v", d, want)
	}
}

// domain-odd.xml: a macvtap NIC, two hostdev NICs with the same alias (the
// second is dropped: it would duplicate a series), a user NIC and a
// network NIC of an inactive domain (no target, no bridge yet).
func TestParseDomainOddNICs(t *testing.T) {
	d, dups, err := parseDomain(readTestdata(t, "domain-odd.xml"), "paused")
	if err != nil {
		t.Fatal(err)
	}
	if dups != 1 {
		t.Errorf("dups = %d, want 1", dups)
	}
	want := []NIC{
		{Type: "direct", MAC: "52:54:00:ab:00:01", Target: "macvtap0", SourceDev: "eth0", SourceMode: "bridge", Model: "virtio", Alias: "net0"},
		{Type: "hostdev", MAC: "52:54:00:ab:00:02", Alias: "hostdev0"},
		{Type: "user", MAC: "52:54:00:ab:00:04", Model: "e1000"},
		{Type: "network", MAC: "52:54:00:ab:00:05", Network: "default", Model: "virtio"},
	}
	if !reflect.DeepEqual(d.NICs, want) {
		t.Errorf("NICs\n got %+v\nwant %+v", d.NICs, want)
	}
	if d.Type != "kvm" || d.ID != 7 || d.State != "paused" {
		t.Errorf("domain %+v", d)
	}
	keys := map[string]bool{}
	for _, n := range d.NICs {
		if keys[n.Key()] {
			t.Errorf("key %q twice", n.Key())
		}
		keys[n.Key()] = true
	}
}

func TestParseDomainMalformed(t *testing.T) {
	for _, doc := range []string{"", "<domain", "<domain type='qemu'><name>x</name></domain>", "<network/>"} {
		if _, _, err := parseDomain(doc, "running"); err == nil {
			t.Errorf("parseDomain(%q): no error", doc)
		}
	}
}

func TestParseNetworks(t *testing.T) {
	n, err := parseNetwork(readTestdata(t, "network-isolated.xml"), true)
	if err != nil {
		t.Fatal(err)
	}
	want := Network{Name: "ntrec-net", UUID: n.UUID, Bridge: "ntrecvirbr0", ForwardMode: "isolated", Active: true,
		Addresses: []string{"198.18.78.1/24", "2001:db8:78::1/64"}, DHCPRanges: []string{"198.18.78.10-198.18.78.50"}}
	if !reflect.DeepEqual(n, want) || len(n.UUID) != 36 {
		t.Errorf("isolated network\n got %+v\nwant %+v", n, want)
	}
	n, err = parseNetwork(readTestdata(t, "network-nat.xml"), false)
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "default" || n.ForwardMode != "nat" || n.Bridge != "virbr0" || n.Active || !reflect.DeepEqual(n.Addresses, []string{"192.168.122.1/24"}) {
		t.Errorf("default network %+v", n)
	}
	if _, err := parseNetwork("<network><bridge", true); err == nil {
		t.Error("malformed network XML: no error")
	}
}
