package dashboards

import (
	"fmt"
	"maps"
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
				want, err := classify(expr, docker)
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
				res, err := prom.query(t, m[1])
				if err != nil {
					t.Fatalf("%s: variable %s: %s: %v", name, v.Name, m[1], err)
				}
				if !slices.ContainsFunc(res, func(s sample) bool { return s.Metric[m[2]] == exp.Addr }) {
					t.Errorf("%s: variable %s: %s has no %s=%q: %v", name, v.Name, m[1], m[2], exp.Addr, res)
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
		for _, name := range []string{"ContainerTrafficSpike", "ContainerNetworkDrops", "NtaCollectorFailing", "NtaExporterDown", "ArpSpoofingSuspected", "NatIngressConnectionSpike"} {
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

// findQuery returns the first panel query whose expression contains sub.
func findQuery(t *testing.T, all []panelQuery, sub string) panelQuery {
	t.Helper()
	for _, q := range all {
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
