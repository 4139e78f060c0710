package e2e

import (
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// The libvirt lab: a Linux bridge, an isolated libvirt network with DHCP,
// diskless QEMU guests (software emulation, network boot, 32 MiB) whose
// PXE firmware sends DHCP frames, so their taps carry real traffic.

const virshURI = "qemu:///system"

func virsh(t testing.TB, args ...string) string {
	t.Helper()
	return stdout(t, "virsh", append([]string{"-c", virshURI}, args...)...)
}

// requireLibvirt skips (fails under CI) without a working libvirtd.
func requireLibvirt(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "virsh", "install libvirt-daemon-system and qemu-system-x86 (scripts/lab-up.sh does)")
	err := exec.Command("virsh", "-c", virshURI, "version").Run()
	testenv.Require(t, err == nil, "a running libvirtd (scripts/lab-up.sh starts it)")
}

// ensureLibvirtd starts libvirtd when it is not running: tests that stop
// it must leave it up for the others.
func ensureLibvirtd(t testing.TB) {
	if exec.Command("pgrep", "-x", "libvirtd").Run() == nil {
		return
	}
	if err := exec.Command("libvirtd", "-d").Run(); err != nil {
		t.Errorf("restart libvirtd: %v", err)
	}
	for range 100 {
		if exec.Command("virsh", "-c", virshURI, "version").Run() == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Error("libvirtd did not come back")
}

type vmNIC struct {
	kind   string // "bridge" or "network"
	source string // bridge or network name
	mac    string
}

// startVM creates (virsh create: transient) a diskless VM and destroys it
// at cleanup.
func startVM(t *testing.T, name string, nics ...vmNIC) {
	t.Helper()
	var devs strings.Builder
	for _, n := range nics {
		attr := "bridge"
		if n.kind == "network" {
			attr = "network"
		}
		fmt.Fprintf(&devs, "<interface type='%s'><source %s='%s'/><mac address='%s'/><model type='virtio'/></interface>", n.kind, attr, n.source, n.mac)
	}
	doc := fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os><devices>%s</devices></domain>`, name, devs.String())
	path := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	virsh(t, "create", path)
	t.Cleanup(func() { testenv.RunQuiet("virsh", "-c", virshURI, "destroy", name) })
}

func guestMAC() string {
	return "52:54:00:" + testenv.RandHex(1) + ":" + testenv.RandHex(1) + ":" + testenv.RandHex(1)
}

// domIfList is `virsh domiflist`: target → [type, source, model, mac].
func domIfList(t *testing.T, name string) map[string][4]string {
	t.Helper()
	out := map[string][4]string{}
	for _, line := range strings.Split(virsh(t, "domiflist", name), "\n")[2:] {
		f := strings.Fields(line)
		if len(f) == 5 {
			out[f[0]] = [4]string{f[1], f[2], f[3], f[4]}
		}
	}
	return out
}

func TestLibvirtLab(t *testing.T) {
	requireLibvirt(t)
	suffix := testenv.RandHex(2)
	br := "ntlve-br" + suffix
	testenv.Run(t, "ip", "link", "add", br, "type", "bridge")
	t.Cleanup(func() { testenv.RunQuiet("ip", "link", "del", br) })
	testenv.Run(t, "ip", "link", "set", br, "up")

	net, netBr := "ntlve-net"+suffix, "ntlvevb"+suffix
	netXML := filepath.Join(t.TempDir(), "net.xml")
	if err := os.WriteFile(netXML, []byte(fmt.Sprintf(`<network><name>%s</name><bridge name='%s'/>
<ip address='198.18.77.1' netmask='255.255.255.0'><dhcp><range start='198.18.77.10' end='198.18.77.50'/></dhcp></ip></network>`, net, netBr)), 0o644); err != nil {
		t.Fatal(err)
	}
	virsh(t, "net-create", netXML)
	t.Cleanup(func() { testenv.RunQuiet("virsh", "-c", virshURI, "net-destroy", net) })

	vmA, vmB, vmC := "ntlve-a"+suffix, "ntlve-b"+suffix, "ntlve-c"+suffix
	macA, macB1, macB2, macC := guestMAC(), guestMAC(), guestMAC(), guestMAC()
	startVM(t, vmA, vmNIC{"bridge", br, macA})
	startVM(t, vmB, vmNIC{"network", net, macB1}, vmNIC{"bridge", br, macB2})

	e := testenv.StartExporter(t, "--no-collector.docker", "--collector.libvirt.resync=5s", "--scrape.host-cache=1ns") // every scrape reads the kernel: counters lie between the readings around it
	var m testenv.Metrics
	testenv.Eventually(t, "both VMs in the view", 15*time.Second, func() error {
		m = e.Scrape()
		for _, vm := range []string{vmA, vmB} {
			if len(m.All("nta_libvirt_domain_info", map[string]string{"domain": vm})) != 1 {
				return fmt.Errorf("%s missing", vm)
			}
		}
		return nil
	})
	links := testenv.IPLinks(t)

	// Every NIC against virsh domiflist and ip -j -d link.
	for _, vm := range []string{vmA, vmB} {
		uuid := strings.TrimSpace(virsh(t, "domuuid", vm))
		d := m.One(t, "nta_libvirt_domain_info", map[string]string{"domain": vm})
		if d.Labels["uuid"] != uuid || d.Labels["state"] != "running" || d.Labels["type"] != "qemu" {
			t.Errorf("%s: %v, want uuid %s running qemu", vm, d.Labels, uuid)
		}
		ifl := domIfList(t, vm)
		nics := m.All("nta_libvirt_interface_info", map[string]string{"uuid": uuid})
		if len(nics) != len(ifl) {
			t.Errorf("%s: %d NICs exported, virsh domiflist has %d", vm, len(nics), len(ifl))
		}
		for _, n := range nics {
			tap := n.Labels["interface"]
			want, ok := ifl[tap]
			switch {
			case !ok:
				t.Errorf("%s: exported tap %q not in domiflist %v", vm, tap, ifl)
				continue
			case n.Labels["type"] != want[0] || n.Labels["model"] != want[2] || n.Labels["mac"] != want[3]:
				t.Errorf("%s %s: %v, domiflist %v", vm, tap, n.Labels, want)
			case want[0] == "network" && (n.Labels["network"] != want[1] || n.Labels["bridge"] != netBr):
				t.Errorf("%s %s: network %q bridge %q, want %s on %s", vm, tap, n.Labels["network"], n.Labels["bridge"], want[1], netBr)
			case want[0] == "bridge" && n.Labels["bridge"] != want[1]:
				t.Errorf("%s %s: bridge %q, want %s", vm, tap, n.Labels["bridge"], want[1])
			}
			l, ok := links[tap]
			if !ok {
				t.Errorf("%s: tap %s not in ip link", vm, tap)
				continue
			}
			if l.Master != n.Labels["bridge"] || !strings.EqualFold(l.Address[2:], n.Labels["mac"][2:]) || !strings.HasPrefix(l.Address, "fe") {
				t.Errorf("%s %s: ip link master %q address %q; exported bridge %q guest mac %q", vm, tap, l.Master, l.Address, n.Labels["bridge"], n.Labels["mac"])
			}
		}
	}

	// The libvirt network against virsh net-dumpxml.
	var nx struct {
		UUID   string `xml:"uuid"`
		Bridge struct {
			Name string `xml:"name,attr"`
		} `xml:"bridge"`
	}
	if err := xml.Unmarshal([]byte(virsh(t, "net-dumpxml", net)), &nx); err != nil {
		t.Fatal(err)
	}
	ni := m.One(t, "nta_libvirt_network_info", map[string]string{"network": net})
	if ni.Labels["uuid"] != nx.UUID || ni.Labels["bridge"] != nx.Bridge.Name || ni.Labels["forward_mode"] != "isolated" || ni.Labels["active"] != "true" {
		t.Errorf("network %v, net-dumpxml uuid %s bridge %s", ni.Labels, nx.UUID, nx.Bridge.Name)
	}
	m.One(t, "nta_libvirt_network_address_info", map[string]string{"network": net, "address": "198.18.77.1", "prefix_length": "24"})

	// Node Graph: vm → tap → bridge, libvirt network → its bridge, no edge dangles.
	uuidB := strings.TrimSpace(virsh(t, "domuuid", vmB))
	nodes := map[string]bool{}
	for _, n := range m.All("nta_node_info", nil) {
		nodes[n.Labels["id"]] = true
	}
	edges := map[string]bool{}
	for _, ed := range m.All("nta_edge_info", nil) {
		edges[ed.Labels["kind"]+" "+ed.Labels["source"]+" "+ed.Labels["target"]] = true
		if !nodes[ed.Labels["source"]] || !nodes[ed.Labels["target"]] {
			t.Errorf("dangling edge %v", ed.Labels)
		}
	}
	for tap, want := range domIfList(t, vmB) {
		if !edges["vm_nic vm:"+uuidB+" if:host/"+tap] {
			t.Errorf("no edge vm %s → %s", vmB, tap)
		}
		bridge := want[1]
		if want[0] == "network" {
			bridge = netBr
		}
		if !edges["member if:host/"+tap+" if:host/"+bridge] {
			t.Errorf("no edge %s → bridge %s", tap, bridge)
		}
	}
	if !edges["backs libvirtnet:"+nx.UUID+" if:host/"+netBr] || !edges["vm_network vm:"+uuidB+" libvirtnet:"+nx.UUID] {
		t.Errorf("libvirt network edges missing")
	}

	// Traffic, from the VM's point of view, between two ip -s readings of
	// the tap taken around the scrape. The guests' PXE firmware sends DHCP.
	tapA := ""
	for tap := range domIfList(t, vmA) {
		tapA = tap
	}
	testenv.Eventually(t, "the PXE firmware sends frames", 60*time.Second, func() error {
		before := testenv.IPLinks(t)[tapA].Stats64
		m := e.Scrape()
		after := testenv.IPLinks(t)[tapA].Stats64
		sent := m.One(t, "nta_vm_network_transmit_packets_total", map[string]string{"domain": vmA, "interface": tapA}).Value
		sentB := m.One(t, "nta_vm_network_transmit_bytes_total", map[string]string{"domain": vmA, "interface": tapA}).Value
		recv := m.One(t, "nta_vm_network_receive_packets_total", map[string]string{"domain": vmA, "interface": tapA}).Value
		if sent < float64(before.Rx.Packets) || sent > float64(after.Rx.Packets) ||
			sentB < float64(before.Rx.Bytes) || sentB > float64(after.Rx.Bytes) ||
			recv < float64(before.Tx.Packets) || recv > float64(after.Tx.Packets) {
			t.Fatalf("VM counters sent %v (%v B) received %v not between tap readings rx %d..%d (%d..%d B) tx %d..%d",
				sent, sentB, recv, before.Rx.Packets, after.Rx.Packets, before.Rx.Bytes, after.Rx.Bytes, before.Tx.Packets, after.Tx.Packets)
		}
		if sent == 0 {
			return fmt.Errorf("no frame from %s yet", vmA)
		}
		return nil
	})

	// Leases, whenever dnsmasq has handed one out, match virsh.
	if out := virsh(t, "net-dhcp-leases", net); strings.Contains(out, "198.18.77.") {
		m := e.Scrape()
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 5 && strings.HasPrefix(f[4], "198.18.77.") {
				ip := strings.SplitN(f[4], "/", 2)[0]
				l := m.One(t, "nta_libvirt_dhcp_lease_info", map[string]string{"network": net, "ip": ip})
				if l.Labels["mac"] != f[2] {
					t.Errorf("lease %s: mac %s, virsh %s", ip, l.Labels["mac"], f[2])
				}
			}
		}
	}

	// The topology subcommand shows the VMs.
	text := testenv.Run(t, testenv.ExporterBinary(t), "topology", "--no-docker")
	for _, want := range []string{"vm " + vmA + " [qemu VM (running)]", "vm " + vmB, "libvirt network " + net} {
		if !strings.Contains(text, want) {
			t.Errorf("topology text lacks %q:\n%s", want, text)
		}
	}

	// Churn while the exporter runs: A destroyed, C started.
	virsh(t, "destroy", vmA)
	startVM(t, vmC, vmNIC{"bridge", br, macC})
	testenv.Eventually(t, "A gone and C in the view", 10*time.Second, func() error {
		m := e.Scrape()
		if n := len(m.All("nta_libvirt_domain_info", map[string]string{"domain": vmA})) + len(m.All("nta_vm_network_transmit_packets_total", map[string]string{"domain": vmA})); n != 0 {
			return fmt.Errorf("%d series of %s left", n, vmA)
		}
		if len(m.All("nta_libvirt_interface_info", map[string]string{"domain": vmC, "mac": macC})) != 1 {
			return fmt.Errorf("%s not in the view", vmC)
		}
		return nil
	})

	// A real libvirtd restart: scrapes keep working, the collector says
	// it has no data, and the view (QEMU guests survive) comes back by
	// itself. One warning for the outage.
	t.Cleanup(func() { ensureLibvirtd(t) })
	testenv.Run(t, "pkill", "-x", "libvirtd")
	testenv.Eventually(t, "libvirtd stopped", 10*time.Second, func() error {
		if exec.Command("pgrep", "-x", "libvirtd").Run() == nil {
			return fmt.Errorf("still running")
		}
		return nil
	})
	testenv.Eventually(t, "libvirt collector reports no data", 10*time.Second, func() error {
		m := e.Scrape()
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "libvirt"}).Value; v != 0 {
			return fmt.Errorf("success %v", v)
		}
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "links"}).Value; v != 1 {
			t.Fatalf("links collector success %v while libvirtd is down", v)
		}
		return nil
	})
	for range 3 {
		e.Scrape()
	}
	ensureLibvirtd(t)
	testenv.Eventually(t, "libvirt view back after the restart", 30*time.Second, func() error {
		m := e.Scrape()
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "libvirt"}).Value; v != 1 {
			return fmt.Errorf("success %v", v)
		}
		for _, vm := range []string{vmB, vmC} {
			if len(m.All("nta_libvirt_domain_info", map[string]string{"domain": vm, "state": "running"})) != 1 {
				return fmt.Errorf("%s not back", vm)
			}
		}
		return nil
	})
	warnings := 0
	for _, l := range strings.Split(e.Logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "libvirt unavailable") {
			warnings++
		}
	}
	if n := warnings; n != 1 {
		t.Errorf("%d warnings for one libvirtd outage, want 1:\n%s", n, testenv.Tail(e.Logs.String(), 20))
	}
}
