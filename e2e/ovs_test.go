package e2e

import (
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
)

// ovsCtl is Debian's script that starts, stops and restarts ovsdb-server
// and ovs-vswitchd.
const ovsCtl = "/usr/share/openvswitch/scripts/ovs-ctl"

// requireOVS requires root, the OVS tools and an ovsdb-server that answers
// (scripts/lab-up.sh starts it).
func requireOVS(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "ovs-vsctl", "Debian package openvswitch-switch")
	testenv.RequireCommand(t, ovsCtl, "Debian package openvswitch-switch")
	testenv.Require(t, ovsAnswers(), "ovsdb-server answering `ovs-vsctl show` (scripts/lab-up.sh starts it)")
}

func ovsAnswers() bool { return exec.Command("ovs-vsctl", "--timeout=2", "show").Run() == nil }

func vsctl(t testing.TB, args ...string) string {
	t.Helper()
	return stdout(t, "ovs-vsctl", append([]string{"--timeout=10"}, args...)...)
}

// ovsRow is one row of `ovs-vsctl --format=json list TABLE`, its values
// decoded from OVSDB's JSON notation: a string, a number, a bool, a
// []any (set) or a map[string]string (map); a uuid is its string.
type ovsRow map[string]any

func ovsList(t testing.TB, table string) []ovsRow {
	t.Helper()
	var out struct {
		Data     [][]any  `json:"data"`
		Headings []string `json:"headings"`
	}
	jsonOf(t, &out, "ovs-vsctl", "--timeout=10", "--format=json", "list", table)
	rows := make([]ovsRow, 0, len(out.Data))
	for _, d := range out.Data {
		r := ovsRow{}
		for i, h := range out.Headings {
			r[h] = ovsDecode(d[i])
		}
		rows = append(rows, r)
	}
	return rows
}

func ovsDecode(v any) any {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return v
	}
	switch a[0] {
	case "uuid":
		return a[1]
	case "set":
		var out []any
		for _, e := range a[1].([]any) {
			out = append(out, ovsDecode(e))
		}
		return out
	case "map":
		out := map[string]string{}
		for _, kv := range a[1].([]any) {
			p := kv.([]any)
			out[fmt.Sprint(ovsDecode(p[0]))] = ovsScalar(ovsDecode(p[1]))
		}
		return out
	}
	return v
}

func ovsScalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any: // an optional value: empty set or one element
		if len(x) == 1 {
			return ovsScalar(x[0])
		}
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = ovsScalar(e)
		}
		return strings.Join(parts, ",")
	}
	return ""
}

func (r ovsRow) str(col string) string { return ovsScalar(r[col]) }

func (r ovsRow) m(col string) map[string]string {
	m, _ := r[col].(map[string]string)
	return m
}

// ovsStats reads an interface's statistics column with ovs-vsctl.
func ovsStats(t testing.TB, iface string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	s := strings.Trim(strings.TrimSpace(vsctl(t, "get", "interface", iface, "statistics")), "{}")
	for _, kv := range strings.Split(s, ", ") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("statistics of %s: %q", iface, kv)
		}
		out[k] = n
	}
	return out
}

// TestOVSLab wires a host with Open vSwitch (userspace datapath) the ways
// users do and compares the exporter with ovs-vsctl: two bridges joined by
// a patch pair, a VXLAN tunnel, two namespaces on veth ports pinging each
// other, a container added with ovs-docker, a QEMU VM whose tap is an OVS
// port (virtualport openvswitch); then a port deleted while running and a
// real ovs-ctl restart.
func TestOVSLab(t *testing.T) {
	requireOVS(t)
	testimage.RequireDocker(t)
	testenv.RequireCommand(t, "ovs-docker", "Debian package openvswitch-common")
	vl := newVMLab(t)
	id := testenv.RandHex(2)
	p := "ntov" + id
	brA, brB := p+"a", p+"b"
	pa, pb, vx := p+"pa", p+"pb", p+"vx"
	h1, h2 := p+"h1", p+"h2"
	ns1, ns2 := p+"n1", p+"n2"
	t.Cleanup(func() {
		testenv.RunQuiet("ovs-vsctl", "--timeout=10", "--if-exists", "del-br", brA, "--", "--if-exists", "del-br", brB)
		for _, ns := range []string{ns1, ns2} {
			testenv.RunQuiet("ip", "netns", "del", ns)
		}
		testenv.RunQuiet("ip", "link", "del", h1)
		testenv.RunQuiet("ip", "link", "del", h2)
	})
	vsctl(t, "add-br", brA, "--", "set", "bridge", brA, "datapath_type=netdev")
	vsctl(t, "add-br", brB, "--", "set", "bridge", brB, "datapath_type=netdev", "fail_mode=standalone")
	vsctl(t, "add-port", brA, pa, "--", "set", "interface", pa, "type=patch", "options:peer="+pb,
		"--", "add-port", brB, pb, "--", "set", "interface", pb, "type=patch", "options:peer="+pa)
	vsctl(t, "add-port", brB, vx, "--", "set", "interface", vx, "type=vxlan", "options:remote_ip=192.0.2.77", "options:key=4242")
	bond, bm1, bm2 := p+"bd", p+"m1", p+"m2"
	vsctl(t, "add-bond", brB, bond, bm1, bm2, "bond_mode=balance-slb",
		"--", "set", "interface", bm1, "type=internal", "--", "set", "interface", bm2, "type=internal")
	for i, pair := range [][2]string{{h1, ns1}, {h2, ns2}} {
		host, ns := pair[0], pair[1]
		testenv.Run(t, "ip", "netns", "add", ns)
		testenv.Run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
		testenv.Run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("198.18.91.%d/24", i+1), "dev", "eth0")
		testenv.Run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		testenv.Run(t, "ip", "link", "set", host, "up")
		vsctl(t, "add-port", brA, host, "tag=31")
	}
	// A container the ovs-docker way: --network none, then a veth whose
	// host end OVS gets, with external_ids container_id/container_iface.
	img := testimage.Ensure(t)
	ctr := testimage.RunContainer(t, "ntov", "--network", "none", img)
	t.Cleanup(func() { testenv.RunQuiet("ovs-docker", "del-ports", brB, ctr) })
	testenv.Run(t, "ovs-docker", "add-port", brB, "eth1", ctr, "--ipaddress=198.18.92.2/24")
	// A VM whose NIC libvirt plugs into brB.
	v := vl.createVM(t, "o", nic{"ovs", brB, randMAC()})
	vmTap := vshIfList(t, v.name)[0].target

	e := testenv.StartExporter(t, "--collector.ovs.resync=2s", "--collector.ovs.timeout=1s", "--collector.flows", "--collector.flows.roles=ovs-port")
	ping := func() {
		testenv.Run(t, "ip", "netns", "exec", ns1, "ping", "-c", "5", "-i", "0.2", "-W", "1", "198.18.91.2")
	}
	ping()

	// ovs-vsctl's reading, after the exporter's view has caught up.
	var ports, ifaces []ovsRow
	ours := func(name string) bool {
		return strings.HasPrefix(name, p) || name == vmTap || strings.HasSuffix(name, "_l")
	}
	testenv.Eventually(t, "the exporter lists every interface ovs-vsctl lists on the test's bridges", 20*time.Second, func() error {
		m := e.Scrape()
		ports, ifaces = ovsList(t, "Port"), ovsList(t, "Interface")
		for _, r := range ifaces {
			name := r.str("name")
			if !ours(name) {
				continue
			}
			if len(m.All("nta_ovs_interface_info", map[string]string{"interface": name})) != 1 {
				return fmt.Errorf("interface %s not exported once", name)
			}
		}
		return nil
	})
	m := e.Scrape()

	t.Run("bridges match ovs-vsctl list Bridge", func(t *testing.T) {
		for _, r := range ovsList(t, "Bridge") {
			name := r.str("name")
			if name != brA && name != brB {
				continue
			}
			dp := r.str("datapath_type")
			if dp == "" {
				dp = "system"
			}
			got := m.One(t, "nta_ovs_bridge_info", map[string]string{"bridge": name})
			if got.Labels["datapath_type"] != dp || got.Labels["fail_mode"] != r.str("fail_mode") {
				t.Errorf("bridge %s: exported %v, ovs-vsctl datapath_type %q fail_mode %q", name, got.Labels, dp, r.str("fail_mode"))
			}
		}
	})

	t.Run("promtool check metrics passes", func(t *testing.T) { promtoolCheckMetrics(t, e.Raw()) })

	t.Run("ports match ovs-vsctl list Port", func(t *testing.T) {
		n := 0
		for _, r := range ports {
			name := r.str("name")
			if !ours(name) {
				continue
			}
			n++
			got := m.All("nta_ovs_port_info", map[string]string{"port": name})
			if len(got) != 1 {
				t.Errorf("port %s exported %d times", name, len(got))
				continue
			}
			if got[0].Labels["tag"] != r.str("tag") {
				t.Errorf("port %s: tag %q, ovs-vsctl %q", name, got[0].Labels["tag"], r.str("tag"))
			}
			if got[0].Labels["trunks"] != r.str("trunks") {
				t.Errorf("port %s: trunks %q, ovs-vsctl %q", name, got[0].Labels["trunks"], r.str("trunks"))
			}
			members, _ := r["interfaces"].([]any)
			if want := r.str("bond_mode"); len(members) > 1 && got[0].Labels["bond_mode"] != want {
				t.Errorf("bond %s: bond_mode %q, ovs-vsctl %q", name, got[0].Labels["bond_mode"], want)
			}
			for _, iu := range members {
				var iname string
				for _, ir := range ifaces {
					if ir.str("_uuid") == iu {
						iname = ir.str("name")
					}
				}
				if len(m.All("nta_ovs_interface_info", map[string]string{"port": name, "interface": iname})) != 1 {
					t.Errorf("port %s: member %s (%v) not exported under it", name, iname, iu)
				}
			}
		}
		if n < 8 { // pa pb vx bond h1 h2, the container's, the VM's (and the bridges' own)
			t.Errorf("only %d of the test's ports in ovs-vsctl's list", n)
		}
	})

	t.Run("interfaces match ovs-vsctl list Interface", func(t *testing.T) {
		for _, r := range ifaces {
			name := r.str("name")
			if !ours(name) {
				continue
			}
			got := ovsIfaceLabels(t, m, name)
			typ := r.str("type")
			if typ == "" {
				typ = "system"
			}
			opts, ext := r.m("options"), r.m("external_ids")
			want := map[string]string{
				"type": typ, "ofport": r.str("ofport"), "mac": r.str("mac_in_use"),
				"admin_state": r.str("admin_state"), "link_state": r.str("link_state"),
				"peer": opts["peer"], "remote_ip": opts["remote_ip"], "key": opts["key"],
				"attached_mac": ext["attached-mac"], "iface_id": ext["iface-id"], "vm_id": ext["vm-id"],
				"container_id": ext["container_id"], "container_iface": ext["container_iface"],
				"tunnel_egress": r.m("status")["tunnel_egress_iface"], "error": r.str("error"),
			}
			if want["ofport"] == "-1" {
				want["ofport"] = ""
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("interface %s: %s=%q, ovs-vsctl says %q", name, k, got[k], w)
				}
			}
		}
		// What the test set, read back through the exporter.
		for name, want := range map[string]map[string]string{
			pa:    {"type": "patch", "peer": pb, "bridge": brA},
			vx:    {"type": "vxlan", "remote_ip": "192.0.2.77", "key": "4242", "bridge": brB},
			vmTap: {"attached_mac": v.nics[0].mac, "vm_id": v.uuid, "bridge": brB},
		} {
			got := ovsIfaceLabels(t, m, name)
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s: %s=%q, want %q", name, k, got[k], w)
				}
			}
		}
		if s := m.All("nta_ovs_interface_external_ids_info", map[string]string{"container_id": ctr, "container_iface": "eth1"}); len(s) != 1 {
			t.Errorf("%d interfaces of container %s (ovs-docker), want 1", len(s), ctr)
		}
	})

	t.Run("counters lie between ovs-vsctl readings around the scrape", func(t *testing.T) {
		testenv.Eventually(t, "ping counted in OVS statistics", 15*time.Second, func() error {
			ping()
			if s := ovsStats(t, h1); s["rx_packets"] < 5 || s["tx_packets"] < 5 {
				return fmt.Errorf("statistics of %s: %v", h1, s)
			}
			return nil
		})
		for _, iface := range []string{h1, h2} {
			before := ovsStats(t, iface)
			sm := e.Scrape()
			after := ovsStats(t, iface)
			for metric, key := range map[string]string{
				"nta_ovs_interface_receive_packets_total": "rx_packets", "nta_ovs_interface_receive_bytes_total": "rx_bytes",
				"nta_ovs_interface_transmit_packets_total": "tx_packets", "nta_ovs_interface_transmit_bytes_total": "tx_bytes",
				"nta_ovs_interface_transmit_drops_total": "tx_dropped",
			} {
				got := uint64(sm.One(t, metric, map[string]string{"interface": iface, "bridge": brA, "port": iface}).Value)
				if got < before[key] || got > after[key] {
					t.Errorf("%s %s = %d, ovs-vsctl %d before and %d after the scrape", iface, metric, got, before[key], after[key])
				}
				if key == "rx_packets" && got < 5 {
					t.Errorf("%s %s = %d after pings", iface, metric, got)
				}
			}
		}
	})

	t.Run("node graph joins bridges, ports, patch, tunnel, container and VM", func(t *testing.T) {
		edges := map[string]bool{}
		for _, s := range m.All("nta_edge_info", nil) {
			edges[s.Labels["kind"]+" "+s.Labels["source"]+" "+s.Labels["target"]] = true
		}
		nodes := map[string]string{}
		for _, s := range m.All("nta_node_info", nil) {
			nodes[s.Labels["id"]] = s.Labels["kind"]
		}
		patchA, patchB := "ovsif:"+pa, "ovsif:"+pb
		if patchA > patchB {
			patchA, patchB = patchB, patchA
		}
		for _, want := range []string{
			"ovs_port ovsbr:" + brA + " ovsport:" + brA + "/" + h1,
			"ovs_interface ovsport:" + brA + "/" + h1 + " if:host/" + h1, // the kernel link's own node
			"ovs_patch " + patchA + " " + patchB,
			"ovs_tunnel ovsif:" + vx + " tunnel:192.0.2.77",
			"ovs_interface ovsport:" + brB + "/" + vmTap + " if:host/" + vmTap,
			"vm_nic vm:" + v.uuid + " if:host/" + vmTap, // VM → tap → OVS port → bridge
		} {
			if !edges[want] {
				t.Errorf("no edge %q", want)
			}
		}
		// The container's veth: host end on OVS, peer in its namespace,
		// the namespace the container's.
		var hostEnd string
		for _, s := range m.All("nta_ovs_interface_external_ids_info", map[string]string{"container_id": ctr}) {
			hostEnd = s.Labels["interface"]
		}
		var peer string
		for e := range edges {
			f := strings.Fields(e)
			if f[0] == "veth" && (f[1] == "if:host/"+hostEnd || f[2] == "if:host/"+hostEnd) {
				peer = f[1]
				if peer == "if:host/"+hostEnd {
					peer = f[2]
				}
			}
		}
		if hostEnd == "" || peer == "" {
			t.Fatalf("container %s: OVS host end %q, veth peer %q", ctr, hostEnd, peer)
		}
		ns := strings.TrimPrefix(strings.SplitN(peer, "/", 2)[0], "if:")
		var sandboxOf string
		for e := range edges {
			f := strings.Fields(e)
			if f[0] == "sandbox" && f[2] == "netns:"+ns {
				sandboxOf = f[1]
			}
		}
		if !strings.HasPrefix(sandboxOf, "container:") {
			t.Errorf("the namespace %s of %s's veth peer belongs to no container node (sandbox edges from %q)", ns, ctr, sandboxOf)
		}
		if k := nodes["if:host/"+brA]; k != "ovs_internal" {
			t.Errorf("bridge %s's internal port is kind %q, want ovs_internal", brA, k)
		}
		if k, ok := nodes["if:host/ovs-netdev"]; ok && k != "ovs_datapath" {
			t.Errorf("ovs-netdev is kind %q, want ovs_datapath", k)
		}
	})

	t.Run("ovs-port capture takes OVS's kernel ports only", func(t *testing.T) {
		testenv.Eventually(t, "capture on OVS ports", 20*time.Second, func() error {
			got := map[string]bool{}
			for _, s := range e.Scrape().All("nta_capture_kernel_packets_total", nil) {
				got[s.Labels["interface"]] = true
			}
			for _, want := range []string{h1, h2, vmTap} {
				if !got[want] {
					return fmt.Errorf("%s not captured; captured %v", want, slices.Sorted(maps.Keys(got)))
				}
			}
			for name := range got {
				if !ours(name) && name != "ovs-netdev" && !isOVSInternal(t, name) {
					return fmt.Errorf("captures on %s, which is no OVS port", name)
				}
			}
			return nil
		})
	})

	t.Run("topology command draws OVS", func(t *testing.T) {
		out := stdout(t, testenv.ExporterBinary(t), "topology", "--no-docker")
		for _, want := range []string{"ovs bridge " + brA, "⇄ patch to bridge " + brB, "⇢ tunnel to 192.0.2.77", "← vm " + v.name} {
			if !strings.Contains(out, want) {
				t.Errorf("topology text lacks %q:\n%s", want, out)
			}
		}
		dot := stdout(t, testenv.ExporterBinary(t), "topology", "--no-docker", "--format=dot")
		if !strings.Contains(dot, `"ovsbr:`+brA+`"`) || !strings.Contains(dot, "ovs_patch") {
			t.Errorf("topology dot lacks the OVS bridge or patch:\n%s", testenv.Tail(dot, 2000))
		}
	})

	t.Run("a port deleted while running leaves /metrics within seconds", func(t *testing.T) {
		began := time.Now()
		vsctl(t, "del-port", brA, h2)
		testenv.Eventually(t, h2+" gone", 5*time.Second, func() error {
			m := e.Scrape()
			if len(m.All("nta_ovs_interface_info", map[string]string{"interface": h2})) != 0 ||
				len(m.All("nta_ovs_interface_receive_packets_total", map[string]string{"interface": h2})) != 0 {
				return fmt.Errorf("%s still exported", h2)
			}
			return nil
		})
		t.Logf("%s gone from /metrics %.2fs after del-port", h2, time.Since(began).Seconds())
	})

	t.Run("a hung ovsdb-server (SIGSTOP): scrapes stay fast, success 0, back on SIGCONT", func(t *testing.T) {
		pid := strings.TrimSpace(stdout(t, "cat", "/var/run/openvswitch/ovsdb-server.pid"))
		t.Cleanup(func() { testenv.RunQuiet("kill", "-CONT", pid) })
		testenv.Run(t, "kill", "-STOP", pid)
		began := time.Now()
		testenv.Eventually(t, "hang noticed", 15*time.Second, func() error {
			t0 := time.Now()
			m := e.Scrape()
			if d := time.Since(t0); d > 2*time.Second {
				return fmt.Errorf("scrape took %s with ovsdb-server hung", d)
			}
			if v := m.One(t, "nta_collector_success", map[string]string{"collector": "ovs"}).Value; v != 0 {
				return fmt.Errorf("ovs success %v", v)
			}
			return nil
		})
		t.Logf("hung ovsdb-server noticed in %.1fs", time.Since(began).Seconds())
		if !strings.Contains(e.Logs.String(), "did not answer") {
			t.Errorf("no log line says ovsdb-server did not answer:\n%s", testenv.Tail(e.Logs.String(), 2000))
		}
		testenv.Run(t, "kill", "-CONT", pid)
		testenv.Eventually(t, "back after SIGCONT", 15*time.Second, func() error {
			if v := e.Scrape().One(t, "nta_collector_success", map[string]string{"collector": "ovs"}).Value; v != 1 {
				return fmt.Errorf("ovs success %v", v)
			}
			return nil
		})
	})

	t.Run("ovs-ctl stop: success 0, other collectors serve; start: back by itself", func(t *testing.T) {
		stopOVS, startOVS := ovsCtlStopStart(t)
		warnsBefore := countLines(e.Logs.String(), "OVSDB unreachable")
		stopOVS()
		testenv.Eventually(t, "ovs collector down", 10*time.Second, func() error {
			m := e.Scrape()
			if v := m.One(t, "nta_collector_success", map[string]string{"collector": "ovs"}).Value; v != 0 {
				return fmt.Errorf("ovs success %v with OVS stopped", v)
			}
			if v := m.One(t, "nta_collector_success", map[string]string{"collector": "links"}).Value; v != 1 {
				return fmt.Errorf("links success %v", v)
			}
			if s := m.All("nta_ovs_interface_info", nil); len(s) != 0 {
				return fmt.Errorf("%d OVS interfaces exported with OVS stopped", len(s))
			}
			return nil
		})
		time.Sleep(3 * time.Second) // reconnect attempts meanwhile
		startOVS()
		began := time.Now()
		ovsBack(t, e, h1, "OVS back after start")
		t.Logf("OVS view back %.1fs after ovs-ctl start", time.Since(began).Seconds())
		if n := countLines(e.Logs.String(), "OVSDB unreachable") - warnsBefore; n != 1 {
			t.Errorf("%d 'OVSDB unreachable' warnings for one outage, want 1", n)
		}
	})

	t.Run("ovs-ctl restart: success 0 meanwhile, one warning, back by itself", func(t *testing.T) {
		warnsBefore := countLines(e.Logs.String(), "OVSDB unreachable")
		var (
			mu      sync.Mutex
			sawDown bool
			bad     []string
		)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { // scrape through the restart
			defer close(done)
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				began := time.Now()
				body, err := testenv.Fetch(e.URL + "/metrics")
				took := time.Since(began)
				mu.Lock()
				if err != nil || took > 3*time.Second {
					bad = append(bad, fmt.Sprintf("scrape took %s: %v", took, err))
				} else if mm, err := testenv.ParseMetrics(body); err == nil {
					for _, s := range mm.All("nta_collector_success", nil) {
						if s.Labels["collector"] == "ovs" && s.Value == 0 {
							sawDown = true
						}
						if s.Labels["collector"] == "links" && s.Value != 1 {
							bad = append(bad, "links collector failed during the OVS restart")
						}
					}
				}
				mu.Unlock()
			}
		}()
		began := time.Now()
		testenv.Run(t, ovsCtl, "restart", "--system-id=random")
		ovsBack(t, e, h1, "OVS back in the exporter")
		t.Logf("OVS view back %.1fs after ovs-ctl restart began", time.Since(began).Seconds())
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bad {
			t.Error(b)
		}
		if !sawDown {
			t.Log("no scrape fell inside the outage") // the restart can be shorter than the scrape interval
		}
		if n := countLines(e.Logs.String(), "OVSDB unreachable") - warnsBefore; n != 1 {
			t.Errorf("%d 'OVSDB unreachable' warnings for one restart, want 1:\n%s", n, testenv.Tail(e.Logs.String(), 3000))
		}
		if n := countLines(e.Logs.String(), "OVSDB reachable again"); n < 1 {
			t.Errorf("no 'reachable again' line after the restart")
		}
	})
}

// ovsIfaceLabels merges the labels of an interface's OVS families: its info
// (exactly one series), and its patch, tunnel and external-ids info where
// it has them (at most one each; absent labels are "").
func ovsIfaceLabels(t testing.TB, m testenv.Metrics, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range []string{"peer", "remote_ip", "local_ip", "key", "dst_port", "tunnel_egress", "attached_mac", "iface_id", "vm_id", "container_id", "container_iface"} {
		out[k] = ""
	}
	maps.Copy(out, m.One(t, "nta_ovs_interface_info", map[string]string{"interface": name}).Labels)
	for _, fam := range []string{"nta_ovs_patch_info", "nta_ovs_tunnel_info", "nta_ovs_interface_external_ids_info"} {
		s := m.All(fam, map[string]string{"interface": name})
		if len(s) > 1 {
			t.Errorf("%d %s series of %s", len(s), fam, name)
		}
		if len(s) == 1 {
			maps.Copy(out, s[0].Labels)
		}
	}
	return out
}

// ovsBack waits until the exporter's ovs collector works and exports iface.
func ovsBack(t *testing.T, e *testenv.Exporter, iface, what string) {
	t.Helper()
	testenv.Eventually(t, what, 30*time.Second, func() error {
		m := e.Scrape()
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "ovs"}).Value; v != 1 {
			return fmt.Errorf("ovs collector success %v", v)
		}
		if len(m.All("nta_ovs_interface_info", map[string]string{"interface": iface})) != 1 {
			return fmt.Errorf("%s not back", iface)
		}
		return nil
	})
}

// ovsCtlStopStart stops Open vSwitch (both daemons) and starts it again in
// t.Cleanup too, so a failing test never leaves the lab without OVS.
func ovsCtlStopStart(t *testing.T) (stop, start func()) {
	started := true
	start = func() {
		testenv.Run(t, ovsCtl, "start", "--system-id=random")
		started = true
	}
	stop = func() {
		started = false
		testenv.Run(t, ovsCtl, "stop")
	}
	t.Cleanup(func() {
		if !started {
			testenv.RunQuiet(ovsCtl, "start", "--system-id=random")
		}
	})
	return stop, start
}

// isOVSInternal reports whether name is an internal port of some OVS bridge.
func isOVSInternal(t testing.TB, name string) bool {
	out, err := exec.Command("ovs-vsctl", "--timeout=5", "get", "interface", name, "type").Output()
	return err == nil && strings.TrimSpace(string(out)) == "internal"
}

// OVSDB over TCP (--collector.ovs.db=tcp:HOST:PORT): ovsdb-server told to
// listen on a loopback port (ovs-vsctl set-manager ptcp:PORT:127.0.0.1).
func TestOVSOverTCP(t *testing.T) {
	requireOVS(t)
	br := "ntot" + testenv.RandHex(2)
	_, port, _ := strings.Cut(testenv.FreeAddr(t), ":")
	t.Cleanup(func() {
		testenv.RunQuiet("ovs-vsctl", "--timeout=10", "--if-exists", "del-br", br)
		testenv.RunQuiet("ovs-vsctl", "--timeout=10", "del-manager")
	})
	vsctl(t, "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
	vsctl(t, "set-manager", "ptcp:"+port+":127.0.0.1")
	e := testenv.StartExporter(t, "--collector.ovs.db=tcp:127.0.0.1:"+port)
	testenv.Eventually(t, br+" over TCP", 15*time.Second, func() error {
		m := e.Scrape()
		if len(m.All("nta_ovs_bridge_info", map[string]string{"bridge": br})) != 1 {
			return fmt.Errorf("bridge %s not exported", br)
		}
		return nil
	})
}

// With no ovsdb-server at all (a socket path nobody serves), the ovs
// collector reports success 0 with one warning naming the socket and what
// to do, and the other collectors are unaffected.
func TestOVSAbsentIsNoData(t *testing.T) {
	testenv.RequireRoot(t)
	e := testenv.StartExporter(t, "--collector.ovs.db=unix:"+t.TempDir()+"/db.sock", "--collector.ovs.resync=1s")
	testenv.Eventually(t, "ovs success 0, links 1", 10*time.Second, func() error {
		m := e.Scrape()
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "ovs"}).Value; v != 0 {
			return fmt.Errorf("ovs success %v", v)
		}
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "links"}).Value; v != 1 {
			return fmt.Errorf("links success %v", v)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // several reconnect attempts
	logs := e.Logs.String()
	if n := countLines(logs, "OVSDB unreachable"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, testenv.Tail(logs, 2000))
	}
	for _, want := range []string{"db.sock", "--collector.ovs.db", "--no-collector.ovs"} {
		if !strings.Contains(logs, want) {
			t.Errorf("warning does not say %q:\n%s", want, testenv.Tail(logs, 2000))
		}
	}
	if n := countLines(logs, "level=ERROR"); n != 0 {
		t.Errorf("error lines:\n%s", testenv.Tail(logs, 2000))
	}
}
