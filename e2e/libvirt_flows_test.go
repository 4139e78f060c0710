package e2e

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// TestLibvirtFlowsCaptureOnlyVMTaps: with --collector.flows.roles=vm-tap
// the exporter captures on exactly the taps libvirt says belong to running
// VMs (picked up when a VM starts after the exporter, released when it is
// destroyed), not on a tap with a VM-like MAC that libvirt does not know,
// nor on veths or bridges; the guests' PXE DHCP DISCOVERs show as flows
// 0.0.0.0 → 255.255.255.255 on the taps of their boot NICs, and a VM's leased address is named after it.
func TestLibvirtFlowsCaptureOnlyVMTaps(t *testing.T) {
	l := newVMLab(t)
	// Decoys on the same bridge: a tap nobody's VM owns, with a MAC like
	// libvirt's, and a veth pair.
	decoyTap, v0, v1 := "ntlve"+l.id+"t", "ntlve"+l.id+"v0", "ntlve"+l.id+"v1"
	t.Cleanup(func() {
		testenv.RunQuiet("ip", "link", "del", decoyTap)
		testenv.RunQuiet("ip", "link", "del", v0)
	})
	testenv.Run(t, "ip", "tuntap", "add", "dev", decoyTap, "mode", "tap")
	testenv.Run(t, "ip", "link", "set", decoyTap, "address", tapMAC(randMAC()), "master", l.bridge, "up")
	testenv.Run(t, "ip", "link", "add", v0, "type", "veth", "peer", "name", v1)
	testenv.Run(t, "ip", "link", "set", v0, "master", l.bridge, "up")
	testenv.Run(t, "ip", "link", "set", v1, "up")

	e := testenv.StartExporter(t, "--collector.flows", "--collector.flows.roles=vm-tap",
		"--collector.flows.granularity=5tuple", "--collector.libvirt.resync=5s")
	// The same capture grouped by workload: flows of a VM merge under its name.
	ew := testenv.StartExporter(t, "--collector.flows", "--collector.flows.roles=vm-tap",
		"--collector.flows.granularity=workload", "--collector.libvirt.resync=5s")
	// Started after the exporter: capture must follow libvirt.
	// The firmware PXE-boots from the first NIC only: g's only NIC is a
	// bridge NIC, so DHCP is seen on both kinds of tap.
	v := l.createVM(t, "f", l.networkNIC(), l.bridgeNIC())
	g := l.createVM(t, "g", l.bridgeNIC())
	vRows, gRows := vshIfList(t, v.name), vshIfList(t, g.name)
	rows := append(slices.Clone(vRows), gRows...)
	netTap := vRows[0].target
	if vRows[0].typ != "network" {
		t.Fatalf("virsh domiflist %s: first NIC %+v, want the network NIC", v.name, vRows[0])
	}
	pxe := []ifRow{vRows[0], gRows[0]} // the NICs the firmware boots from
	captured := func(m testenv.Metrics) map[string]bool {
		out := map[string]bool{}
		for _, s := range m.All("nta_capture_kernel_packets_total", nil) {
			out[s.Labels["interface"]] = true
		}
		return out
	}
	began := time.Now()
	testenv.Eventually(t, "capture on the VM's taps", 30*time.Second, func() error {
		got := captured(e.Scrape())
		for _, r := range rows {
			if !got[r.target] {
				return fmt.Errorf("%s not captured; captured: %v", r.target, slices.Sorted(maps.Keys(got)))
			}
		}
		return nil
	})
	t.Logf("capture on the VMs' taps %.1fs after virsh create", time.Since(began).Seconds())

	t.Run("only taps of running VMs are captured", func(t *testing.T) {
		before := runningTaps(t)
		got := captured(e.Scrape())
		after := runningTaps(t)
		for iface := range got {
			if before[iface] == "" && after[iface] == "" {
				t.Errorf("captures on %s, which no running domain owns per virsh (VM taps %v)", iface, slices.Sorted(maps.Keys(after)))
			}
		}
		for _, not := range []string{decoyTap, v0, v1, l.bridge, l.netBridge} {
			if got[not] {
				t.Errorf("captures on %s, which is not a VM's tap", not)
			}
		}
	})

	t.Run("PXE DHCP DISCOVERs are flows from the guests", func(t *testing.T) {
		testenv.Eventually(t, "DHCP from the guests on their boot NICs' taps", 60*time.Second, func() error {
			m := e.Scrape()
			for _, r := range pxe {
				match := map[string]string{"interface": r.target, "direction": "in", "proto": "udp",
					"src": "0.0.0.0", "dst": "255.255.255.255", "src_port": "68", "dst_port": "67"}
				if sumFamily(m, "nta_flow_packets_total", match) < 1 {
					var seen []string
					for _, s := range m.All("nta_flow_packets_total", map[string]string{"interface": r.target}) {
						seen = append(seen, fmt.Sprint(s.Labels, " ", s.Value))
					}
					return fmt.Errorf("no DHCP flow from the guest on %s; flows there: %v", r.target, seen)
				}
			}
			return nil
		})
	})

	t.Run("the VM's leased address is named after the VM", func(t *testing.T) {
		var leaseIP string
		deadline := time.Now().Add(40 * time.Second)
		for leaseIP == "" && time.Now().Before(deadline) {
			for _, le := range dhcpLeases(t, l.net) {
				if le.mac == v.nics[0].mac {
					leaseIP = le.ip
				}
			}
			if leaseIP == "" {
				time.Sleep(time.Second)
			}
		}
		if leaseIP == "" {
			// iPXE completes DHCP (DORA) within seconds here; no lease is a
			// broken lab or libvirt network, not a pass.
			t.Fatalf("no lease for %s on %s within 40s (virsh net-dhcp-leases %s)", v.nics[0].mac, l.net, l.net)
		}
		// dnsmasq pings the offered address and unicasts its replies to it
		// (seen with tcpdump here): flows towards the VM on its tap.
		testenv.Eventually(t, "flows to "+leaseIP+" named "+v.name, 20*time.Second, func() error {
			m := e.Scrape()
			to := m.All("nta_flow_packets_total", map[string]string{"interface": netTap, "dst": leaseIP})
			if len(to) == 0 {
				return fmt.Errorf("no flow to %s on %s", leaseIP, netTap)
			}
			for _, s := range append(to, m.All("nta_flow_packets_total", map[string]string{"interface": netTap, "src": leaseIP})...) {
				name := s.Labels["dst_name"]
				if s.Labels["src"] == leaseIP {
					name = s.Labels["src_name"]
				}
				if name != v.name {
					return fmt.Errorf("flow %v: name of %s %q, want %q", s.Labels, leaseIP, name, v.name)
				}
			}
			t.Logf("lease %s of %s: %d flow series to it on %s, all named %s", leaseIP, v.nics[0].mac, len(to), netTap, v.name)
			return nil
		})
		// Workload granularity: the address is replaced by the VM's name and
		// the flows to it merged into one series per direction and protocol.
		testenv.Eventually(t, "workload flows to "+v.name, 20*time.Second, func() error {
			m := ew.Scrape()
			if s := m.All("nta_flow_packets_total", map[string]string{"interface": netTap, "dst": leaseIP}); len(s) != 0 {
				return fmt.Errorf("workload granularity kept the address %s: %v", leaseIP, s[0].Labels)
			}
			seen := map[string]int{}
			for _, s := range m.All("nta_flow_packets_total", map[string]string{"interface": netTap, "dst": v.name}) {
				seen[s.Labels["direction"]+"/"+s.Labels["proto"]]++
				if s.Value < 1 {
					return fmt.Errorf("workload flow %v has %v packets", s.Labels, s.Value)
				}
			}
			if len(seen) == 0 {
				return fmt.Errorf("no workload flow to %s on %s", v.name, netTap)
			}
			for k, n := range seen {
				if n != 1 {
					return fmt.Errorf("%d series for %s to %s, want one", n, k, v.name)
				}
			}
			return nil
		})
	})

	t.Run("destroying the VM releases its taps", func(t *testing.T) {
		vsh(t, "destroy", v.name)
		vsh(t, "destroy", g.name)
		testenv.Eventually(t, "capture released", 20*time.Second, func() error {
			m := e.Scrape()
			for _, r := range rows {
				if s := m.All("nta_capture_kernel_packets_total", map[string]string{"interface": r.target}); len(s) != 0 {
					// The name may already belong to another VM's new tap.
					if owner := runningTaps(t)[r.target]; owner == "" || owner == v.name || owner == g.name {
						return fmt.Errorf("%s still captured", r.target)
					}
				}
			}
			if v := m.One(t, "nta_collector_success", map[string]string{"collector": "flows"}).Value; v != 1 {
				return fmt.Errorf("flows collector success %v", v)
			}
			return nil
		})
		if n := countLines(e.Logs.String(), "level=ERROR"); n != 0 {
			t.Errorf("error lines after a VM's taps vanished:\n%s", testenv.Tail(e.Logs.String(), 3000))
		}
	})
}
