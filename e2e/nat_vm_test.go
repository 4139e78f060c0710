package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// A VM on a libvirt NAT network (the lab notes' virbr0: <forward
// mode='nat'/>, libvirt's MASQUERADE) reaching the outside: its egress is
// attributed to the VM, found by its DHCP lease, the way a container's is.
// The VM is a real QEMU guest booting from the network: iPXE leases an
// address, then asks the boot server the network names (a namespace of the
// test's own, outside the host) for its file over TFTP. Those requests leave
// the host masqueraded; nta's count of them equals `conntrack -L`'s.
func TestNATEgressAttributedToAVMByItsLease(t *testing.T) {
	requireNATLab(t)
	requireLibvirtd(t)
	o := newOutside(t, 0)
	third := 100 + int(mustHexByte(testenv.RandHex(1)))%100
	for strings.HasPrefix(o.hostIP, fmt.Sprintf("198.19.%d.", third)) {
		third = 100 + (third-99)%100 // not the outside's subnet
	}
	id := testenv.RandHex(2)
	l := &vmLab{id: id, net: "ntnat" + id + "-net", netBridge: "ntnat" + id + "vbr",
		subnet: fmt.Sprintf("198.19.%d", third), dir: t.TempDir()}
	t.Cleanup(func() {
		vshQuiet("net-destroy", l.net)
		vshQuiet("net-undefine", l.net)
	})
	netXML := fmt.Sprintf(`<network><name>%s</name><forward mode='nat'/><bridge name='%s'/>
  <ip address='%s.1' netmask='255.255.255.0'><dhcp><range start='%s.10' end='%s.50'/><bootp file='nta-test.kpxe' server='%s'/></dhcp></ip>
</network>`, l.net, l.netBridge, l.subnet, l.subnet, l.subnet, o.nsIP)
	file := filepath.Join(l.dir, l.net+".xml")
	if err := os.WriteFile(file, []byte(netXML), 0o600); err != nil {
		t.Fatal(err)
	}
	vsh(t, "net-define", file)
	vsh(t, "net-start", l.net)

	e := testenv.StartExporter(t, "--collector.libvirt.uri="+libvirtURI, "--collector.nat.resync=1s")
	v := l.createVM(t, "nat", l.networkNIC())

	var leaseIP string
	testenv.Eventually(t, "a DHCP lease for the VM", 60*time.Second, func() error {
		for _, le := range dhcpLeases(t, l.net) {
			if le.mac == v.nics[0].mac {
				leaseIP = le.ip
				return nil
			}
		}
		return fmt.Errorf("no lease for %s on %s yet", v.nics[0].mac, l.net)
	})
	// The independent reading: the VM's masqueraded TFTP requests.
	tftp := func() []ctEntry {
		return conntrackL(t, "-p", "udp", "-s", leaseIP, "-d", o.nsIP, "--dport", "69", "--src-nat")
	}
	egress := map[string]string{"kind": "vm", "container_id": v.uuid, "direction": "egress", "protocol": "udp", "peer": o.nsIP + ":69"}
	testenv.Eventually(t, "nta's egress of the VM agrees with conntrack -L", 60*time.Second, func() error {
		before := tftp()
		m := e.Scrape()
		after := tftp()
		if len(before) == 0 {
			return fmt.Errorf("no masqueraded TFTP request from %s to %s yet", leaseIP, o.nsIP)
		}
		if len(after) != len(before) {
			return fmt.Errorf("conntrack -L changed while scraping: %d then %d entries", len(before), len(after))
		}
		s := m.All("nta_nat_connections_opened_total", egress)
		if len(s) != 1 {
			return fmt.Errorf("%d series of nta_nat_connections_opened_total%v (VM %s at %s)", len(s), egress, v.name, leaseIP)
		}
		if s[0].Value != float64(len(before)) {
			return fmt.Errorf("nta opened %v connections, conntrack -L lists %d:\n%s", s[0].Value, len(before), before[0].line)
		}
		if s[0].Labels["container"] != v.name {
			return fmt.Errorf("container label %q, want the VM's name %s", s[0].Labels["container"], v.name)
		}
		if open := m.One(t, "nta_nat_connections_open", egress).Value; open != float64(len(before)) {
			return fmt.Errorf("nta has %v open, conntrack -L lists %d", open, len(before))
		}
		t.Logf("VM %s at %s: %d masqueraded TFTP requests to %s, in nta and in conntrack -L", v.name, leaseIP, len(before), o.nsIP)
		return nil
	})
	// No ingress is invented for the VM, and no container owns its traffic.
	m := e.Scrape()
	if n := len(m.All("nta_nat_connections_opened_total", map[string]string{"container_id": v.uuid, "direction": "ingress"})); n != 0 {
		t.Errorf("%d ingress series for the VM, which publishes nothing", n)
	}
	for _, s := range m.All("nta_nat_connections_opened_total", map[string]string{"peer": o.nsIP + ":69"}) {
		if s.Labels["container_id"] != v.uuid {
			t.Errorf("the VM's TFTP requests also counted for %v", s.Labels)
		}
	}
}
