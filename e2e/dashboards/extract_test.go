package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v2"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// grafanaVars replaces the Grafana variables the dashboards use with what
// Grafana would send for "All instances" and a 1 s scrape interval. Longer
// names first: strings.Replacer prefers the earlier of two matches.
var grafanaVars = strings.NewReplacer(
	"${instance}", ".*", "$instance", ".*",
	"${container}", ".*", "$container", ".*",
	"${domain}", ".*", "$domain", ".*",
	"${__rate_interval}", "1m", "$__rate_interval", "1m",
	"${__interval_ms}", "15000", "$__interval_ms", "15000",
	"${__interval}", "15s", "$__interval", "15s",
	"${__range_s}", "3600", "$__range_s", "3600",
	"${__range}", "1h", "$__range", "1h",
)

// unsubstituted finds a Grafana variable left in an expression ($1 in a
// label_replace replacement is PromQL's own and not matched).
var unsubstituted = regexp.MustCompile(`\$\{?[A-Za-z_]`)

var metricName = regexp.MustCompile(`\bnta_[a-z0-9_]+`)

// expectation says what a query must return in this test's lab.
type expectation int

const (
	parseOnly expectation = iota // no error; empty is fine
	nonEmpty                     // no error and at least one series
)

// Families by what the lab guarantees. A query naming a family not listed
// fails the test: classify it here when adding a panel.
var (
	alwaysServed = []string{ // root exporter on any Linux host, plus the netns fixture
		"nta_node_info", "nta_edge_info", "nta_netns_info", "nta_netns_scan_errors",
		"nta_interface_", "nta_bridge_port_info", "nta_veth_peer_info",
		"nta_collector_success", "nta_collector_duration_seconds", "nta_collector_errors_total",
		"nta_build_info",
	}
	dockerServed = []string{"nta_docker_", "nta_container_network_"} // with the docker lab
	captureOnly  = []string{"nta_flow_", "nta_capture_", "nta_arp_"} // packet capture, on with the docker lab
	// VMs (and Open vSwitch where it does not run): their e2e tests are
	// in ../; this lab has an OVS bridge but no VM.
	virtServed = []string{"nta_vm_network_", "nta_libvirt_", "nta_ovs_"}
	// The nat collector's own health, with nf_conntrack loaded (lab-up.sh).
	natServed = []string{"nta_nat_conntrack_entries", "nta_nat_conntrack_limit", "nta_nat_receive_errors_total", "nta_nat_events_lost_total"}
	// Per-container NAT series need north-south traffic through Docker's
	// NAT, which this lab does not make (e2e/nat_test.go checks them).
	natTraffic = []string{"nta_nat_"}
	// Only appear when something goes wrong.
	onTrouble = []string{"nta_arp_conflicts_total"}
)

func hasPrefixIn(name string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

// classify returns what expr must return, or an error naming an
// unclassified family.
func classify(expr string, docker, ovs bool) (expectation, error) {
	want := nonEmpty
	for _, m := range metricName.FindAllString(expr, -1) {
		switch {
		case hasPrefixIn(m, onTrouble):
			return parseOnly, nil
		case hasPrefixIn(m, captureOnly):
			if !docker {
				want = parseOnly
			}
		case hasPrefixIn(m, dockerServed):
			if !docker {
				want = parseOnly
			}
		case strings.HasPrefix(m, "nta_ovs_controller"): // the fixture's bridge has no controller
			want = parseOnly
		case ovs && strings.HasPrefix(m, "nta_ovs_"): // the OVS fixture
		case hasPrefixIn(m, virtServed):
			if !strings.Contains(expr, " or ") { // alone: nothing here; in a union with served families: those
				want = parseOnly
			}
		case hasPrefixIn(m, alwaysServed):
		case hasPrefixIn(m, alwaysServed), hasPrefixIn(m, natServed):
		case hasPrefixIn(m, natTraffic):
			want = parseOnly
		default:
			return 0, fmt.Errorf("metric %s is not classified in e2e/dashboards/queries_test.go", m)
		}
	}
	return want, nil
}

// panelQuery is one target of a dashboard panel.
type panelQuery struct {
	Dashboard, Panel, RefID, Expr string
}

type jsonPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []jsonPanel `json:"panels"` // collapsed rows
}

type jsonDashboard struct {
	Title      string      `json:"title"`
	Panels     []jsonPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// dashboardFiles returns every dashboards/*.json, decoded.
func dashboardFiles(t *testing.T) map[string]jsonDashboard {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(testenv.ModuleRoot(), "dashboards", "*.json"))
	if len(files) == 0 {
		t.Fatal("no dashboards/*.json: run go run ./dashboards/gen")
	}
	out := map[string]jsonDashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d jsonDashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// panelQueries flattens the targets of every panel, rows included.
func panelQueries(name string, panels []jsonPanel) []panelQuery {
	var out []panelQuery
	for _, p := range panels {
		for _, tg := range p.Targets {
			out = append(out, panelQuery{Dashboard: name, Panel: p.Title, RefID: tg.RefID, Expr: tg.Expr})
		}
		out = append(out, panelQueries(name, p.Panels)...)
	}
	return out
}

// ruleExprs returns alert/record name -> expression from the rules file.
func ruleExprs(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			out[r.Alert+r.Record] = r.Expr
		}
	}
	return out
}
