package dashboards

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
)

func TestDashboardAndRuleQueries(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "prometheus", "Debian package prometheus")
	testenv.RequireCommand(t, "ip", "iproute2")
	dockerErr := testimage.Available()
	docker := dockerErr == nil
	if !docker {
		// Docker is optional here, except under CI.
		testenv.Require(t, !testenv.InCI(), "a running dockerd: "+dockerErr.Error())
		t.Logf("dockerd not reachable (%v): Docker panels are only checked to parse", dockerErr)
	}

	fx := newNetnsFixture(t)
	var lab *dockerLab
	if docker {
		lab = newDockerLab(t)
	}
	var ovs *ovsFixture
	if ovsAnswers() {
		ovs = newOVSFixture(t)
	} else {
		testenv.Require(t, !testenv.InCI(), "ovsdb-server answering `ovs-vsctl show` (scripts/lab-up.sh starts it)")
		t.Log("Open vSwitch not running: OVS panels are only checked to parse")
	}

	rulesFile := filepath.Join(testenv.ModuleRoot(), "deploy", "rules", "nta-alerts.yml")
	var args []string
	if docker { // flows on the lab containers' veths feed the flow panels
		args = append(args, "--collector.flows")
	}
	exp := testenv.StartExporter(t, args...)
	prom := startPrometheus(t, exp.Addr, rulesFile)

	// A few scrapes, so that rate(...[1m]) has samples to work with.
	testenv.Eventually(t, "3 successful scrapes of the exporter", 60*time.Second, func() error {
		return prom.oneSeries(t, `sum_over_time(up{job="nta"}[1m]) >= 3`)
	})
	const sent = 2_000_000
	if ovs != nil {
		ovs.traffic(t)
		// ovs-vswitchd writes statistics every 5 s: wait until Prometheus
		// has the ping in two samples.
		testenv.Eventually(t, "the OVS ports' ping in Prometheus", 30*time.Second, func() error {
			return prom.oneSeries(t, fmt.Sprintf(`sum(rate(nta_ovs_interface_receive_packets_total{interface=%q}[1m])) > 0`, ovs.Port1))
		})
	}
	if lab != nil {
		lab.sendTraffic(t, sent)
		// Wait until a scrape has seen the bytes, and one more for rate().
		testenv.Eventually(t, "the server container's received bytes in Prometheus", 30*time.Second, func() error {
			return prom.oneSeries(t, fmt.Sprintf(`sum(nta_container_network_receive_bytes_total{container=%q}) >= %d`, lab.Server, sent))
		})
		time.Sleep(2 * time.Second)
	}

	// A failed scrape marks every series stale and would empty the instant
	// queries below: start them right after a run of good scrapes.
	testenv.Eventually(t, "5 s of successful scrapes", 60*time.Second, func() error {
		return prom.oneSeries(t, `min_over_time(up{job="nta"}[5s]) == 1`)
	})
	if v, err := prom.query(t, `max_over_time(scrape_duration_seconds{job="nta"}[1m])`); err == nil && len(v) == 1 {
		t.Logf("slowest scrape of the exporter in the last minute: %.3fs", value(v[0]))
	}

	dashboards := dashboardFiles(t)
	var all []panelQuery
	for _, name := range slices.Sorted(maps.Keys(dashboards)) {
		all = append(all, panelQueries(name, dashboards[name].Panels)...)
	}
	if len(all) < 10 {
		t.Fatalf("only %d panel queries found in dashboards/*.json", len(all))
	}

	t.Run("panels", func(t *testing.T) {
		for _, q := range all {
			t.Run(q.Dashboard+"/"+q.Panel+"/"+q.RefID, func(t *testing.T) {
				expr := grafanaVars.Replace(q.Expr)
				if unsubstituted.MatchString(expr) {
					t.Fatalf("Grafana variable left in %q: add it to grafanaVars", expr)
				}
				want, err := classify(expr, docker, ovs != nil)
				if err != nil {
					t.Fatal(err)
				}
				v, err := prom.query(t, expr)
				if err != nil {
					t.Fatalf("query %s: %v", expr, err)
				}
				if want == nonEmpty && len(v) == 0 {
					t.Errorf("query %s returned nothing; the lab guarantees data for it", expr)
				}
			})
		}
	})

	t.Run("variables", func(t *testing.T) {
		labelValues := regexp.MustCompile(`^label_values\(\s*(.+?)\s*,\s*([A-Za-z_]\w*)\s*\)$`)
		for name, d := range dashboards {
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				q, _ := v.Query.(string)
				m := labelValues.FindStringSubmatch(q)
				if m == nil {
					t.Errorf("%s: variable %s: query %q is not label_values(selector, label)", name, v.Name, q)
					continue
				}
				res, err := prom.query(t, grafanaVars.Replace(m[1]))
				if err != nil {
					t.Fatalf("%s: variable %s: %s: %v", name, v.Name, m[1], err)
				}
				want := map[string]string{"instance": exp.Addr} // label → a value the lab guarantees
				if lab != nil {
					want["container"] = lab.Server
				}
				if w, ok := want[m[2]]; ok && !slices.ContainsFunc(res, func(s sample) bool { return s.Metric[m[2]] == w }) {
					t.Errorf("%s: variable %s: %s has no %s=%q: %v", name, v.Name, m[1], m[2], w, res)
				}
			}
		}
	})

	t.Run("node graph", func(t *testing.T) {
		nodes, edges := nodeGraphFrames(t, prom, all)
		ids := map[string]bool{}
		for _, n := range nodes {
			for _, l := range []string{"id", "title", "subtitle"} {
				if n.Metric[l] == "" {
					t.Errorf("node without %s: %v", l, n.Metric)
				}
			}
			if ids[n.Metric["id"]] {
				t.Errorf("node id %q twice: the Node Graph panel needs unique ids", n.Metric["id"])
			}
			ids[n.Metric["id"]] = true
		}
		for _, want := range []string{"if:host/" + fx.HostIf, "if:named:" + fx.NS + "/" + fx.PeerIf,
			"if:named:" + fx.NS + "/" + fx.Bridge, "netns:named:" + fx.NS} {
			if !ids[want] {
				t.Errorf("no node %q among %d nodes", want, len(ids))
			}
		}
		var vethEdge bool
		for _, e := range edges {
			for _, l := range []string{"id", "source", "target"} {
				if e.Metric[l] == "" {
					t.Errorf("edge without %s: %v", l, e.Metric)
				}
			}
			for _, end := range []string{e.Metric["source"], e.Metric["target"]} {
				if !ids[end] {
					t.Errorf("edge %s ends at %q, which is no node: the panel would drop it", e.Metric["id"], end)
				}
			}
			ends := []string{e.Metric["source"], e.Metric["target"]}
			slices.Sort(ends)
			if slices.Equal(ends, []string{"if:host/" + fx.HostIf, "if:named:" + fx.NS + "/" + fx.PeerIf}) {
				vethEdge = true
			}
		}
		if !vethEdge {
			t.Errorf("no edge joins the fixture's veth ends if:host/%s and if:named:%s/%s", fx.HostIf, fx.NS, fx.PeerIf)
		}
	})

	t.Run("node graph statistics", func(t *testing.T) {
		nodes, edges := nodeGraphFrames(t, prom, all)
		ids := map[string]map[string]bool{"nodes": {}, "edges": {}}
		for _, n := range nodes {
			ids["nodes"][n.Metric["id"]] = true
		}
		for _, e := range edges {
			ids["edges"][e.Metric["id"]] = true
		}
		stats := map[string]map[string]float64{} // refId → id → value
		fields := map[string]map[string]string{} // node id → field → value, from the label queries
		for _, q := range all {
			frame, _, ok := strings.Cut(q.RefID, "_")
			if !ok || (frame != "nodes" && frame != "edges") {
				continue
			}
			v, err := prom.query(t, grafanaVars.Replace(q.Expr))
			if err != nil {
				t.Fatalf("%s: %v", q.RefID, err)
			}
			labelQuery := strings.HasPrefix(q.RefID, "nodes_detail_") || q.RefID == "nodes_icon"
			stats[q.RefID] = map[string]float64{}
			for _, s := range v {
				// The join on id needs exactly one row per id, labelled id
				// (and instance, hidden in the panel), plus the fields of a
				// label query.
				for l, val := range s.Metric {
					switch {
					case l == "id" || l == "instance":
					case labelQuery && (strings.HasPrefix(l, "detail__") || l == "icon"):
						if fields[s.Metric["id"]] == nil {
							fields[s.Metric["id"]] = map[string]string{}
						}
						fields[s.Metric["id"]][l] = val
					default:
						t.Errorf("%s: row has label %s=%q: it would be a column of the %s frame", q.RefID, l, val, frame)
					}
				}
				if s.Metric["id"] == "" || s.Metric["instance"] == "" {
					t.Errorf("%s: row labels %v, want id and instance", q.RefID, s.Metric)
				}
				id := s.Metric["id"]
				if !ids[frame][id] {
					t.Errorf("%s: row for %q, which is no %s row: the outer join would add a ghost", q.RefID, id, frame)
				}
				if _, dup := stats[q.RefID][id]; dup {
					t.Errorf("%s: %q twice", q.RefID, id)
				}
				stats[q.RefID][id] = value(s)
			}
		}
		for _, want := range []string{"nodes_mainstat", "nodes_secondarystat", "nodes_arc_receive", "nodes_arc_transmit", "edges_mainstat", "edges_secondarystat"} {
			if stats[want] == nil {
				t.Fatalf("no node graph query %s", want)
			}
		}
		for id, rx := range stats["nodes_arc_receive"] {
			if tx := stats["nodes_arc_transmit"][id]; rx < 0 || tx < 0 || math.Abs(rx+tx-1) > 0.01 { // two queries, evaluated a moment apart
				t.Errorf("node %s: arcs receive %v + transmit %v, want shares adding up to 1", id, rx, tx)
			}
		}
		if f := fields["netns:named:"+fx.NS]; f["icon"] != "layer-group" {
			t.Errorf("fixture namespace node fields %v, want icon layer-group", f)
		}
		if f := fields["if:host/"+fx.HostIf]; f["detail__mac"] == "" || f["detail__mtu"] == "" {
			t.Errorf("fixture veth node fields %v, want its mac and mtu in the hover card", f)
		}
		if ovs != nil {
			// The ping crossed Port1 and Port2 on the bridge: the OVS
			// bridge and ports carry it, and the bridge → port and port →
			// interface edges too.
			for _, id := range []string{"ovsbr:" + ovs.Bridge, "ovsport:" + ovs.Bridge + "/" + ovs.Port1, "if:host/" + ovs.Port1} {
				if v := stats["nodes_mainstat"][id]; v <= 0 {
					t.Errorf("node %s: main stat %v after the ping", id, v)
				}
			}
			for _, e := range []string{
				"ovs_port:ovsbr:" + ovs.Bridge + "--ovsport:" + ovs.Bridge + "/" + ovs.Port2,
				"ovs_interface:ovsport:" + ovs.Bridge + "/" + ovs.Port2 + "--if:host/" + ovs.Port2,
			} {
				if v := stats["edges_mainstat"][e]; v <= 0 {
					t.Errorf("edge %s: main stat %v after the ping", e, v)
				}
			}
		}
		if lab == nil {
			return
		}
		// The test's traffic: the server container, its host-side veth and
		// that veth's link to the bridge carried it.
		cid := strings.TrimSpace(testimage.Docker(t, "inspect", "-f", "{{.Id}}", lab.Server))
		ep, err := prom.query(t, fmt.Sprintf(`nta_docker_endpoint_info{container=%q}`, lab.Server))
		if err != nil || len(ep) != 1 {
			t.Fatalf("endpoint of %s: %v %v", lab.Server, ep, err)
		}
		hostIf := "if:" + ep[0].Metric["host_netns"] + "/" + ep[0].Metric["host_interface"]
		if f := fields["container:"+cid[:12]]; f["detail__image"] == "" || f["detail__state"] != "running" || !strings.HasPrefix(f["detail__ip"], "10.") {
			t.Errorf("server container's hover card %v, want image, state running and its 10.x address", f)
		}
		for _, id := range []string{"container:" + cid[:12], hostIf} {
			if v := stats["nodes_mainstat"][id]; v <= 0 {
				t.Errorf("node %s: main stat %v bytes/s after %d bytes sent", id, v, sent)
			}
		}
		var carried []string
		for _, e := range edges {
			if (e.Metric["source"] == hostIf || e.Metric["target"] == hostIf) && stats["edges_mainstat"][e.Metric["id"]] > 0 {
				carried = append(carried, e.Metric["kind"])
			}
		}
		slices.Sort(carried)
		if !slices.Contains(carried, "veth") || !slices.Contains(carried, "member") {
			t.Errorf("edges at %s with a positive main stat: %v, want the veth pair and the bridge port", hostIf, carried)
		}
	})

	t.Run("tables show the lab", func(t *testing.T) {
		expectRow(t, prom, all, "nta_bridge_port_info", map[string]string{"bridge": fx.Bridge, "interface": fx.PeerIf, "netns": "named:" + fx.NS})
		expectRow(t, prom, all, "nta_veth_peer_info", map[string]string{"netns": "host", "interface": fx.HostIf, "peer_netns": "named:" + fx.NS, "peer_interface": fx.PeerIf})
		if lab == nil {
			return
		}
		expectRow(t, prom, all, "nta_docker_container_info", map[string]string{"container": lab.Server, "state": "running"})
		expectRow(t, prom, all, "nta_docker_endpoint_info", map[string]string{"container": lab.Client, "network": lab.Network})
		expectRow(t, prom, all, "nta_docker_published_port_info", map[string]string{"container": lab.Server, "host_ip": "127.0.0.1", "container_port": "80"})
	})

	t.Run("per-container traffic", func(t *testing.T) {
		if lab == nil {
			t.Skip("no dockerd")
		}
		// The dashboard's own expression: the server received, the client sent.
		for metric, container := range map[string]string{
			"nta_container_network_receive_bytes_total":  lab.Server,
			"nta_container_network_transmit_bytes_total": lab.Client,
		} {
			q := findQuery(t, all, "rate("+metric+"{")
			v, err := prom.query(t, grafanaVars.Replace(q.Expr))
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(v, func(s sample) bool { return s.Metric["container"] == container })
			if i < 0 || value(v[i]) <= 0 {
				t.Errorf("panel %q: no positive rate for %s after %d bytes: %v", q.Panel, container, sent, v)
			}
		}
	})

	t.Run("rules", func(t *testing.T) {
		exprs := ruleExprs(t, rulesFile)
		for _, name := range []string{"ContainerTrafficSpike", "ContainerNetworkDrops", "NtaCollectorFailing", "NtaSourceGone", "NtaExporterDown", "ArpSpoofingSuspected", "VMNICTrafficSpike", "OVSInterfaceDropsOrErrors", "NatIngressConnectionSpike", "ConntrackEventsLost"} {
			if _, ok := exprs[name]; !ok {
				t.Errorf("rule %s missing from %s", name, rulesFile)
			}
		}
		for name, expr := range exprs {
			if _, err := prom.query(t, expr); err != nil {
				t.Errorf("rule %s: %v\n%s", name, err, expr)
			}
		}
		// Prometheus evaluates the rules itself every second: each must have
		// been evaluated without an error (e.g. duplicate label sets).
		testenv.Eventually(t, "every rule evaluated once", 30*time.Second, func() error {
			rs, err := loadedRules(prom)
			if err != nil {
				return err
			}
			if len(rs) != len(exprs) {
				return fmt.Errorf("%d rules loaded, want %d", len(rs), len(exprs))
			}
			for _, r := range rs {
				if r.LastEvaluation.IsZero() || r.LastEvaluation.Year() < 2000 {
					return fmt.Errorf("rule %s not evaluated yet", r.Name)
				}
			}
			return nil
		})
		rs, err := loadedRules(prom)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Health != "ok" || r.LastError != "" {
				t.Errorf("rule %s: health %q, error %q", r.Name, r.Health, r.LastError)
			}
			if r.Name == "NtaExporterDown" && r.State != "inactive" {
				t.Errorf("NtaExporterDown is %s while the exporter is up", r.State)
			}
		}
	})
}

func value(s sample) float64 {
	str, _ := s.Value[1].(string)
	f, _ := strconv.ParseFloat(str, 64)
	return f
}

// findQuery returns the first panel query whose expression contains sub,
// the Node Graph's statistics (which read every counter family) aside.
func findQuery(t *testing.T, all []panelQuery, sub string) panelQuery {
	t.Helper()
	for _, q := range all {
		if strings.HasPrefix(q.RefID, "nodes_") || strings.HasPrefix(q.RefID, "edges_") {
			continue
		}
		if strings.Contains(q.Expr, sub) {
			return q
		}
	}
	t.Fatalf("no dashboard query contains %q", sub)
	return panelQuery{}
}

// nodeGraphFrames runs the Node Graph panel's two queries.
func nodeGraphFrames(t *testing.T, prom *promAPI, all []panelQuery) (nodes, edges []sample) {
	t.Helper()
	for _, q := range all {
		switch q.RefID {
		case "nodes", "edges":
		default:
			continue
		}
		v, err := prom.query(t, grafanaVars.Replace(q.Expr))
		if err != nil {
			t.Fatal(err)
		}
		if len(v) == 0 {
			t.Fatalf("node graph query %s (%s) is empty", q.RefID, q.Expr)
		}
		if q.RefID == "nodes" {
			nodes = v
		} else {
			edges = v
		}
	}
	if nodes == nil || edges == nil {
		t.Fatal("no node graph panel with refIds nodes and edges")
	}
	return nodes, edges
}

// expectRow runs the dashboard query over family and wants a row with labels.
func expectRow(t *testing.T, prom *promAPI, all []panelQuery, family string, labels map[string]string) {
	t.Helper()
	q := findQuery(t, all, family+"{")
	v, err := prom.query(t, grafanaVars.Replace(q.Expr))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range v {
		match := true
		for k, want := range labels {
			if s.Metric[k] != want {
				match = false
				break
			}
		}
		if match {
			return
		}
	}
	t.Errorf("table %q (%s): no row with %v among %d rows", q.Panel, q.Expr, labels, len(v))
}

type ruleState struct {
	Name           string    `json:"name"`
	Health         string    `json:"health"`
	LastError      string    `json:"lastError"`
	State          string    `json:"state"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

// loadedRules lists the rules Prometheus loaded, with their health.
func loadedRules(prom *promAPI) ([]ruleState, error) {
	var data struct {
		Groups []struct {
			Rules []ruleState `json:"rules"`
		} `json:"groups"`
	}
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if err := prom.get(ctx, "/api/v1/rules", nil, &data); err != nil {
		return nil, err
	}
	var out []ruleState
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}
