package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// TestLibvirtViewMatchesVirshAndIP runs VMs on a Linux bridge and on an isolated libvirt
// network and checks the exporter's libvirt families, per-VM counters,
// Node Graph and topology command against virsh's and ip's own reading;
// then destroys and creates VMs while the exporter runs.
func TestLibvirtViewMatchesVirshAndIP(t *testing.T) {
	l := newVMLab(t)
	a := l.createVM(t, "a", l.bridgeNIC())
	b := l.createVM(t, "b", l.networkNIC(), l.bridgeNIC())
	e := testenv.StartExporter(t, "--collector.libvirt.resync=5s")
	m := waitVMs(t, e, a, b)

	t.Run("domains match virsh dominfo and domuuid", func(t *testing.T) {
		for _, v := range []*vm{a, b} {
			s := m.One(t, "nta_libvirt_domain_info", map[string]string{"uuid": v.uuid}).Labels
			if want := domState(t, v.name); s["domain"] != v.name || s["state"] != want || s["type"] != "qemu" {
				t.Errorf("domain %s: nta %v, virsh name %s state %q type qemu", v.uuid, s, v.name, want)
			}
		}
	})

	t.Run("NICs match virsh domiflist and ip -d link", func(t *testing.T) {
		for _, v := range []*vm{a, b} {
			checkVMNICs(t, l, m, v)
		}
	})

	t.Run("libvirt network matches virsh net-dumpxml", func(t *testing.T) {
		n := netDumpXML(t, l.net)
		s := m.One(t, "nta_libvirt_network_info", map[string]string{"network": l.net}).Labels
		mode := "isolated"
		if n.Forward != nil {
			mode = n.Forward.Mode
		}
		if s["uuid"] != n.UUID || s["bridge"] != n.Bridge.Name || s["forward_mode"] != mode || s["active"] != "true" {
			t.Errorf("network %s: nta %v, virsh uuid %s bridge %s forward %s active true", l.net, s, n.UUID, n.Bridge.Name, mode)
		}
		if n.Bridge.Name != l.netBridge || mode != "isolated" {
			t.Errorf("virsh net-dumpxml: bridge %s forward %s, the test defined %s isolated", n.Bridge.Name, mode, l.netBridge)
		}
		var want, got []string
		for _, ip := range n.IPs {
			fam := ip.Family
			if fam == "" {
				fam = "ipv4"
			}
			want = append(want, ip.Address+"/"+prefixLen(ip.Prefix, ip.Netmask)+" "+fam)
		}
		for _, a := range m.All("nta_libvirt_network_address_info", map[string]string{"network": l.net}) {
			got = append(got, a.Labels["address"]+"/"+a.Labels["prefix_length"]+" "+a.Labels["family"])
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) || !slices.Contains(got, l.subnet+".1/24 ipv4") {
			t.Errorf("addresses of %s: nta %v, virsh %v", l.net, got, want)
		}
		if br, ok := testenv.IPLinks(t)[l.netBridge]; !ok || ipKind(br) != "bridge" {
			t.Errorf("ip link: %s is not a bridge: %+v", l.netBridge, br)
		}
	})

	t.Run("node graph joins VMs, taps, bridges and the libvirt network", func(t *testing.T) {
		checkGraph(t, l, m, a, b)
	})

	t.Run("per-VM counters lie between ip readings of the tap, swapped", func(t *testing.T) {
		testenv.Eventually(t, "a VM transmitted (PXE DHCP)", 60*time.Second, func() error {
			sum := 0.0
			for _, v := range []*vm{a, b} {
				sum += sumFamily(e.Scrape(), "nta_vm_network_transmit_packets_total", map[string]string{"uuid": v.uuid})
			}
			if sum == 0 {
				return fmt.Errorf("no packets sent by %s or %s yet", a.name, b.name)
			}
			return nil
		})
		time.Sleep(1100 * time.Millisecond) // past the host-scan cache age
		before := testenv.IPLinks(t)
		got := e.Scrape()
		after := testenv.IPLinks(t)
		for _, v := range []*vm{a, b} {
			for _, row := range vshIfList(t, v.name) {
				checkVMCounters(t, got, v, row, before[row.target], after[row.target])
			}
		}
	})

	t.Run("DHCP leases match virsh net-dhcp-leases", func(t *testing.T) {
		checkLeases(t, l, e, b)
	})

	t.Run("topology command lists the VMs", func(t *testing.T) {
		checkTopologyCommand(t, l, a, b)
	})

	t.Run("promtool check metrics passes", func(t *testing.T) { promtoolCheckMetrics(t, e.Raw()) })

	t.Run("VMs destroyed and created while running", func(t *testing.T) {
		vsh(t, "destroy", a.name)
		began := time.Now()
		testenv.Eventually(t, "destroyed VM "+a.name+" gone from /metrics", 10*time.Second, func() error {
			m := e.Scrape()
			for _, f := range []string{"nta_libvirt_domain_info", "nta_libvirt_interface_info", "nta_vm_network_receive_bytes_total", "nta_vm_network_transmit_packets_total"} {
				if s := m.All(f, map[string]string{"uuid": a.uuid}); len(s) != 0 {
					return fmt.Errorf("%s still has %s: %v", f, a.name, s)
				}
			}
			if s := m.All("nta_node_info", map[string]string{"id": "vm:" + a.uuid}); len(s) != 0 {
				return fmt.Errorf("graph node of %s still there", a.name)
			}
			return nil
		})
		t.Logf("%s left /metrics %.1fs after virsh destroy", a.name, time.Since(began).Seconds())
		c := l.createVM(t, "c", l.bridgeNIC(), l.networkNIC())
		began = time.Now()
		m := waitVMs(t, e, c)
		t.Logf("%s in /metrics %.1fs after virsh create", c.name, time.Since(began).Seconds())
		checkVMNICs(t, l, m, c)
		checkGraph(t, l, m, b, c)
		if s := m.All("nta_libvirt_domain_info", map[string]string{"uuid": b.uuid}); len(s) != 1 {
			t.Errorf("%s, untouched, is not exported once: %v", b.name, s)
		}
	})

	t.Run("libvirt collector succeeded", func(t *testing.T) {
		if v := e.Scrape().One(t, "nta_collector_success", map[string]string{"collector": "libvirt"}).Value; v != 1 {
			t.Errorf("libvirt collector success %v", v)
		}
	})
}

// waitVMs waits until every VM is exported with all its NICs resolved to a
// host tap, and returns that scrape.
func waitVMs(t *testing.T, e *testenv.Exporter, vms ...*vm) testenv.Metrics {
	t.Helper()
	var m testenv.Metrics
	testenv.Eventually(t, "libvirt view has the test's VMs and their taps", 30*time.Second, func() error {
		m = e.Scrape()
		for _, v := range vms {
			if len(m.All("nta_libvirt_domain_info", map[string]string{"uuid": v.uuid})) != 1 {
				return fmt.Errorf("domain %s not exported", v.name)
			}
			nics := m.All("nta_libvirt_interface_info", map[string]string{"uuid": v.uuid})
			if len(nics) != len(v.nics) {
				return fmt.Errorf("domain %s: %d NICs exported, want %d", v.name, len(nics), len(v.nics))
			}
			for _, n := range nics {
				if n.Labels["interface"] == "" {
					return fmt.Errorf("domain %s NIC %s: no host interface yet", v.name, n.Labels["mac"])
				}
			}
		}
		return nil
	})
	return m
}

// checkVMNICs compares a VM's nta_libvirt_interface_info with virsh
// domiflist, the XML the test gave, and the tap as ip sees it.
func checkVMNICs(t *testing.T, l *vmLab, m testenv.Metrics, v *vm) {
	t.Helper()
	rows := vshIfList(t, v.name)
	links := testenv.IPLinks(t)
	if len(rows) != len(v.nics) {
		t.Errorf("%s: virsh lists %d NICs, the test defined %d", v.name, len(rows), len(v.nics))
	}
	for i, row := range rows {
		if i < len(v.nics) && (row.mac != v.nics[i].mac || row.typ != v.nics[i].typ || row.source != v.nics[i].source) {
			t.Errorf("%s NIC %d: virsh %+v, the test defined %+v", v.name, i, row, v.nics[i])
		}
		ss := m.All("nta_libvirt_interface_info", map[string]string{"uuid": v.uuid, "mac": row.mac})
		if len(ss) != 1 {
			t.Errorf("%s NIC %s: %d series, want 1: %v", v.name, row.mac, len(ss), ss)
			continue
		}
		s := ss[0].Labels
		wantBridge, wantNet := row.source, ""
		if row.typ == "network" {
			wantBridge, wantNet = l.netBridge, row.source
		}
		check := map[string][2]string{
			"domain":    {s["domain"], v.name},
			"nic":       {s["nic"], row.target},
			"interface": {s["interface"], row.target},
			"type":      {s["type"], row.typ},
			"model":     {s["model"], row.model},
			"bridge":    {s["bridge"], wantBridge},
			"network":   {s["network"], wantNet},
		}
		for k, c := range check {
			if c[0] != c[1] {
				t.Errorf("%s NIC %s: %s = %q, want %q (virsh domiflist %+v)", v.name, row.mac, k, c[0], c[1], row)
			}
		}
		// The tap, as the kernel says: a tap in the host namespace, on the
		// bridge, with the guest MAC's tail.
		il, ok := links[row.target]
		if !ok {
			t.Errorf("%s: tap %s not in ip link", v.name, row.target)
			continue
		}
		if ipKind(il) != "tap" || il.Master != s["bridge"] || il.Address != tapMAC(row.mac) {
			t.Errorf("%s: ip says %s is kind %s master %s mac %s; nta bridge %s, want tap with mac %s",
				v.name, row.target, ipKind(il), il.Master, il.Address, s["bridge"], tapMAC(row.mac))
		}
		// interface joins nta_interface_info.
		if ii := m.All("nta_interface_info", map[string]string{"netns": "host", "interface": row.target}); len(ii) != 1 || ii[0].Labels["kind"] != "tap" {
			t.Errorf("%s: nta_interface_info for tap %s: %v", v.name, row.target, ii)
		}
	}
}

// checkVMCounters: the VM's counters are the tap's, swapped, and lie
// between ip readings taken just before and after the scrape.
func checkVMCounters(t *testing.T, m testenv.Metrics, v *vm, row ifRow, before, after testenv.IPLink) {
	t.Helper()
	lbl := map[string]string{"uuid": v.uuid, "interface": row.target, "mac": row.mac, "domain": v.name}
	for _, c := range []struct {
		name   string
		lo, hi uint64
	}{
		{"transmit_packets", before.Stats64.Rx.Packets, after.Stats64.Rx.Packets},
		{"transmit_bytes", before.Stats64.Rx.Bytes, after.Stats64.Rx.Bytes},
		{"transmit_errors", before.Stats64.Rx.Errors, after.Stats64.Rx.Errors},
		{"transmit_drops", before.Stats64.Rx.Dropped, after.Stats64.Rx.Dropped},
		{"receive_packets", before.Stats64.Tx.Packets, after.Stats64.Tx.Packets},
		{"receive_bytes", before.Stats64.Tx.Bytes, after.Stats64.Tx.Bytes},
		{"receive_errors", before.Stats64.Tx.Errors, after.Stats64.Tx.Errors},
		{"receive_drops", before.Stats64.Tx.Dropped, after.Stats64.Tx.Dropped},
	} {
		name := "nta_vm_network_" + c.name + "_total"
		ss := m.All(name, lbl)
		if len(ss) != 1 {
			t.Errorf("%s%v: %d series, want 1", name, lbl, len(ss))
			continue
		}
		if got := ss[0].Value; got < float64(c.lo) || got > float64(c.hi) {
			t.Errorf("%s %s %s = %.0f, outside ip's [%d, %d] for the tap (swapped direction)", v.name, row.target, c.name, got, c.lo, c.hi)
		}
	}
}

// checkGraph: no dangling edge; vm → tap → bridge, libvirtnet → bridge and
// vm → libvirtnet for the NICs on the libvirt network.
func checkGraph(t *testing.T, l *vmLab, m testenv.Metrics, vms ...*vm) {
	t.Helper()
	nodes := map[string]map[string]string{}
	for _, s := range m.All("nta_node_info", nil) {
		nodes[s.Labels["id"]] = s.Labels
	}
	for _, s := range m.All("nta_edge_info", nil) {
		if nodes[s.Labels["source"]] == nil || nodes[s.Labels["target"]] == nil {
			t.Errorf("dangling edge %v", s.Labels)
		}
	}
	n := netDumpXML(t, l.net)
	netID := "libvirtnet:" + n.UUID
	if nn := nodes[netID]; nn["kind"] != "libvirt_network" || nn["title"] != l.net {
		t.Errorf("node %s: %v, want kind libvirt_network title %s", netID, nn, l.net)
	}
	m.One(t, "nta_edge_info", map[string]string{"kind": "backs", "source": netID, "target": "if:host/" + n.Bridge.Name})
	for _, v := range vms {
		id := "vm:" + v.uuid
		if vn := nodes[id]; vn["kind"] != "vm" || vn["title"] != v.name {
			t.Errorf("node %s: %v, want kind vm title %s", id, vn, v.name)
		}
		onNet := 0
		for _, row := range vshIfList(t, v.name) {
			tap := "if:host/" + row.target
			m.One(t, "nta_edge_info", map[string]string{"kind": "vm_nic", "source": id, "target": tap})
			br := row.source
			if row.typ == "network" {
				br = n.Bridge.Name
				onNet++
			}
			m.One(t, "nta_edge_info", map[string]string{"kind": "member", "source": tap, "target": "if:host/" + br})
		}
		if got := len(m.All("nta_edge_info", map[string]string{"kind": "vm_network", "source": id, "target": netID})); got != min(onNet, 1) {
			t.Errorf("%s: %d vm_network edges to %s, want %d", v.name, got, l.net, min(onNet, 1))
		}
	}
}

// checkLeases waits a bounded time for a PXE client to get a lease on the
// libvirt network; whenever virsh shows leases, the exporter's must match.
func checkLeases(t *testing.T, l *vmLab, e *testenv.Exporter, owners ...*vm) {
	t.Helper()
	var leases []lease
	deadline := time.Now().Add(25 * time.Second)
	for len(leases) == 0 && time.Now().Before(deadline) {
		if leases = dhcpLeases(t, l.net); len(leases) == 0 {
			time.Sleep(time.Second)
		}
	}
	if len(leases) == 0 {
		t.Logf("no DHCP lease on %s within 25s: nothing to compare", l.net)
		return
	}
	owner := map[string]string{}
	for _, v := range owners {
		for _, n := range v.nics {
			owner[n.mac] = v.name
		}
	}
	// Leases are not announced by events: allow a resync (5s) and a retry.
	testenv.Eventually(t, "nta's leases equal virsh's", 20*time.Second, func() error {
		m := e.Scrape()
		leases = dhcpLeases(t, l.net)
		var want, got []string
		for _, le := range leases {
			want = append(want, fmt.Sprintf("%s %s %q %q", le.mac, le.ip, le.hostname, owner[le.mac]))
		}
		for _, s := range m.All("nta_libvirt_dhcp_lease_info", map[string]string{"network": l.net}) {
			got = append(got, fmt.Sprintf("%s %s %q %q", s.Labels["mac"], s.Labels["ip"], s.Labels["hostname"], s.Labels["domain"]))
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("leases of %s:\n nta   %v\n virsh %v", l.net, got, want)
		}
		for _, le := range leases {
			ex := m.All("nta_libvirt_dhcp_lease_expiry_timestamp_seconds", map[string]string{"network": l.net, "mac": le.mac, "ip": le.ip})
			if len(ex) != 1 || math.Abs(ex[0].Value-float64(le.expiry.Unix())) > 1 {
				return fmt.Errorf("lease %s %s: nta expiry %v, virsh %s (%d)", le.mac, le.ip, ex, le.expiry, le.expiry.Unix())
			}
		}
		return nil
	})
	for _, le := range leases {
		t.Logf("lease on %s: %s %s until %s, nta agrees", l.net, le.mac, le.ip, le.expiry.Format(time.RFC3339))
	}
}

// checkTopologyCommand: `nta-exporter topology` names each VM with its
// taps, and the libvirt network with its bridge and VMs.
func checkTopologyCommand(t *testing.T, l *vmLab, vms ...*vm) {
	t.Helper()
	bin := testenv.ExporterBinary(t)
	text := stdout(t, bin, "topology")
	lines := strings.Split(text, "\n")
	for _, v := range vms {
		head := slices.IndexFunc(lines, func(s string) bool { return strings.HasPrefix(s, "vm "+v.name+" [qemu VM (running)]") })
		if head < 0 {
			t.Errorf("topology text has no line %q:\n%s", "vm "+v.name+" [qemu VM (running)]", text)
			continue
		}
		var under []string
		for _, s := range lines[head+1:] {
			if !strings.HasPrefix(s, "    ") {
				break
			}
			under = append(under, s)
		}
		for _, row := range vshIfList(t, v.name) {
			if !slices.ContainsFunc(under, func(s string) bool { return strings.Contains(s, row.target) }) {
				t.Errorf("topology text: tap %s not listed under vm %s: %q", row.target, v.name, under)
			}
		}
	}
	netLine := ""
	for _, s := range lines {
		if strings.HasPrefix(s, "libvirt network "+l.net+" [") {
			netLine = s
		}
	}
	if !strings.Contains(netLine, "→ bridge "+l.netBridge) {
		t.Errorf("topology text: libvirt network line %q lacks %q", netLine, "→ bridge "+l.netBridge)
	}
	for _, v := range vms {
		if slices.ContainsFunc(v.nics, func(n nic) bool { return n.typ == "network" }) && !strings.Contains(netLine, v.name) {
			t.Errorf("topology text: libvirt network line %q does not list %s", netLine, v.name)
		}
	}
	var g struct{ Nodes []map[string]string }
	if err := json.Unmarshal([]byte(stdout(t, bin, "topology", "--format=json")), &g); err != nil {
		t.Fatal(err)
	}
	for _, v := range vms {
		if !slices.ContainsFunc(g.Nodes, func(n map[string]string) bool {
			return n["kind"] == "vm" && n["id"] == "vm:"+v.uuid && n["title"] == v.name
		}) {
			t.Errorf("topology json has no vm node vm:%s titled %s", v.uuid, v.name)
		}
	}
	dot := stdout(t, bin, "topology", "--format=dot")
	for _, v := range vms {
		if !strings.Contains(dot, v.name) {
			t.Errorf("topology dot does not name %s", v.name)
		}
	}
}
