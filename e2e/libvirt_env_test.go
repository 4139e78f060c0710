package e2e

import (
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// The libvirt lab: real libvirtd + QEMU (software emulation), diskless
// 32 MiB VMs that boot from the network, so their PXE firmware sends DHCP
// frames on every NIC. Every object is named ntlve<id>… with a random id,
// so that two runs on one machine do not collide, and is removed in
// t.Cleanup.
//
//	<id>br   Linux bridge (up)
//	<id>-net isolated libvirt network on bridge <id>vbr, 198.19.N.1/24, DHCP .10–.50

// libvirtURI is the connection the tests and the exporter use.
const libvirtURI = "qemu:///system"

// requireLibvirt requires root, virsh and a libvirtd that answers.
func requireLibvirtd(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "virsh", "Debian package libvirt-clients")
	testenv.RequireCommand(t, "ip", "Debian package iproute2")
	testenv.Require(t, libvirtdAnswers(), "libvirtd answering `virsh -c "+libvirtURI+" version`")
}

func libvirtdAnswers() bool {
	return exec.Command("virsh", "-c", libvirtURI, "version").Run() == nil
}

// virsh runs virsh on libvirtURI and returns its standard output.
func vsh(t testing.TB, args ...string) string {
	t.Helper()
	return stdout(t, "virsh", append([]string{"-c", libvirtURI}, args...)...)
}

func vshQuiet(args ...string) {
	testenv.RunQuiet("virsh", append([]string{"-c", libvirtURI}, args...)...)
}

// vmLab is the bridge and the libvirt network VMs attach to.
type vmLab struct {
	id        string
	bridge    string // plain Linux bridge
	net       string // libvirt network name
	netBridge string // the bridge libvirt creates for it
	subnet    string // "198.19.N": the network is subnet.1/24
	dir       string // domain XML files
}

func newVMLab(t *testing.T) *vmLab {
	t.Helper()
	requireLibvirtd(t)
	id := testenv.RandHex(2)
	third := 100 + int(mustHexByte(testenv.RandHex(1)))%100
	l := &vmLab{id: id, bridge: "ntlve" + id + "br", net: "ntlve" + id + "-net", netBridge: "ntlve" + id + "vbr",
		subnet: fmt.Sprintf("198.19.%d", third), dir: t.TempDir()}
	t.Cleanup(func() {
		vshQuiet("net-destroy", l.net)
		vshQuiet("net-undefine", l.net)
		testenv.RunQuiet("ip", "link", "del", l.bridge)
	})
	testenv.Run(t, "ip", "link", "add", l.bridge, "type", "bridge")
	testenv.Run(t, "ip", "link", "set", l.bridge, "up")
	netXML := fmt.Sprintf(`<network><name>%s</name><bridge name='%s'/>
  <ip address='%s.1' netmask='255.255.255.0'><dhcp><range start='%s.10' end='%s.50'/></dhcp></ip>
</network>`, l.net, l.netBridge, l.subnet, l.subnet, l.subnet)
	file := filepath.Join(l.dir, l.net+".xml")
	if err := os.WriteFile(file, []byte(netXML), 0o600); err != nil {
		t.Fatal(err)
	}
	vsh(t, "net-define", file)
	vsh(t, "net-start", l.net)
	return l
}

func mustHexByte(h string) byte {
	v, _ := strconv.ParseUint(h, 16, 8)
	return byte(v)
}

// nic is one <interface> of a test VM: typ "bridge" (source = a bridge),
// "network" (source = a libvirt network) or "ovs" (source = an OVS bridge,
// virtualport openvswitch).
type nic struct{ typ, source, mac string }

// vm is a running transient domain the test created.
type vm struct {
	name, uuid string
	nics       []nic
}

func randMAC() string {
	h := testenv.RandHex(3)
	return "52:54:00:" + h[0:2] + ":" + h[2:4] + ":" + h[4:6]
}

func (l *vmLab) bridgeNIC() nic  { return nic{"bridge", l.bridge, randMAC()} }
func (l *vmLab) networkNIC() nic { return nic{"network", l.net, randMAC()} }

// createVM starts a transient diskless VM ntlve<id>-<suffix> with the NICs
// (virtio), destroyed in t.Cleanup.
func (l *vmLab) createVM(t *testing.T, suffix string, nics ...nic) *vm {
	t.Helper()
	v := &vm{name: "ntlve" + l.id + "-" + suffix, nics: nics}
	var devs strings.Builder
	for _, n := range nics {
		src := "bridge"
		if n.typ == "network" {
			src = "network"
		}
		if n.typ == "ovs" { // a tap libvirt plugs into an OVS bridge
			fmt.Fprintf(&devs, "    <interface type='bridge'><source bridge='%s'/><virtualport type='openvswitch'/><mac address='%s'/><model type='virtio'/></interface>\n", n.source, n.mac)
			continue
		}
		fmt.Fprintf(&devs, "    <interface type='%s'><source %s='%s'/><mac address='%s'/><model type='virtio'/></interface>\n", n.typ, src, n.source, n.mac)
	}
	domXML := fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <devices>
%s  </devices>
</domain>`, v.name, devs.String())
	file := filepath.Join(l.dir, v.name+".xml")
	if err := os.WriteFile(file, []byte(domXML), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vshQuiet("destroy", v.name) })
	vsh(t, "create", file)
	v.uuid = strings.TrimSpace(vsh(t, "domuuid", v.name))
	return v
}

// ifRow is one row of `virsh domiflist`.
type ifRow struct{ target, typ, source, model, mac string }

// domIfList reads a domain's NICs as virsh lists them.
func vshIfList(t testing.TB, domain string) []ifRow {
	t.Helper()
	var rows []ifRow
	for _, line := range tableRows(vsh(t, "domiflist", domain)) {
		f := strings.Fields(line)
		if len(f) != 5 {
			t.Fatalf("virsh domiflist %s: unexpected row %q", domain, line)
		}
		rows = append(rows, ifRow{target: f[0], typ: f[1], source: f[2], model: f[3], mac: f[4]})
	}
	return rows
}

// tableRows returns the data rows of a virsh table: after the "----" rule,
// blank lines dropped.
func tableRows(out string) []string {
	var rows []string
	ruled := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "---"):
			ruled = true
		case ruled && strings.TrimSpace(line) != "":
			rows = append(rows, line)
		}
	}
	return rows
}

// domState reads the State line of `virsh dominfo`.
func domState(t testing.TB, domain string) string {
	t.Helper()
	for _, line := range strings.Split(vsh(t, "dominfo", domain), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "State" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("virsh dominfo %s: no State line", domain)
	return ""
}

// netXML is the part of `virsh net-dumpxml` the tests compare.
type netXML struct {
	Name   string `xml:"name"`
	UUID   string `xml:"uuid"`
	Bridge struct {
		Name string `xml:"name,attr"`
	} `xml:"bridge"`
	Forward *struct {
		Mode string `xml:"mode,attr"`
	} `xml:"forward"`
	IPs []struct {
		Address string `xml:"address,attr"`
		Netmask string `xml:"netmask,attr"`
		Prefix  string `xml:"prefix,attr"`
		Family  string `xml:"family,attr"`
	} `xml:"ip"`
}

func netDumpXML(t testing.TB, name string) netXML {
	t.Helper()
	var n netXML
	if err := xml.Unmarshal([]byte(vsh(t, "net-dumpxml", name)), &n); err != nil {
		t.Fatalf("virsh net-dumpxml %s: %v", name, err)
	}
	return n
}

// prefixLen is the prefix length of an <ip> element, from prefix or netmask.
func prefixLen(prefix, netmask string) string {
	if prefix != "" {
		return prefix
	}
	ones, _ := net.IPMask(net.ParseIP(netmask).To4()).Size()
	return strconv.Itoa(ones)
}

// lease is one row of `virsh net-dhcp-leases`.
type lease struct {
	expiry            time.Time
	mac, ip, hostname string
}

func dhcpLeases(t testing.TB, network string) []lease {
	t.Helper()
	var out []lease
	for _, line := range tableRows(vsh(t, "net-dhcp-leases", network)) {
		// 2026-12-03 12:54:38   52:54:00:aa:bb:01   ipv4   198.18.77.48/24   -   01:52:…
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("virsh net-dhcp-leases %s: unexpected row %q", network, line)
		}
		exp, err := time.ParseInLocation("2006-01-02 15:04:05", f[0]+" "+f[1], time.Local)
		if err != nil {
			t.Fatalf("virsh net-dhcp-leases %s: expiry %q: %v", network, f[0]+" "+f[1], err)
		}
		ip, _, _ := strings.Cut(f[4], "/")
		host := f[5]
		if host == "-" {
			host = ""
		}
		out = append(out, lease{expiry: exp, mac: strings.ToLower(f[2]), ip: ip, hostname: host})
	}
	return out
}

// tapMAC is the MAC libvirt gives a VM NIC's tap: the guest's with fe first.
func tapMAC(guest string) string { return "fe" + guest[2:] }

// runningTaps returns the host devices of every running domain on the
// machine (the test's and anybody else's), as virsh lists them.
func runningTaps(t testing.TB) map[string]string {
	t.Helper()
	taps := map[string]string{}
	for _, name := range strings.Fields(vsh(t, "list", "--name", "--state-running")) {
		out, err := exec.Command("virsh", "-c", libvirtURI, "domiflist", name).Output()
		if err != nil {
			continue // gone since the list
		}
		for _, line := range tableRows(string(out)) {
			if f := strings.Fields(line); len(f) == 5 && f[0] != "-" {
				taps[f[0]] = name
			}
		}
	}
	return taps
}
