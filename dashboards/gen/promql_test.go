package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/internal/testenv"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/topology"
)

// TestPublishedPortStatsReachTheirNodes evaluates the Node Graph's node and
// edge statistics with promtool on NAT counters of an IPv4, an IPv6 and an
// address-less binding: each lands on the node id topology writes for that
// binding (brackets for IPv6, "*" without address), with the exact rate.
func TestPublishedPortStatsReachTheirNodes(t *testing.T) {
	testenv.RequireCommand(t, "promtool", "Debian package prometheus; scripts/lab-up.sh installs it")
	const promtool = "promtool"
	bindings := []struct {
		hostIP string
		rate   int // bytes/s received; twice that transmitted
	}{{"0.0.0.0", 8}, {"::", 16}, {"", 32}} // powers of two: rates exact in floating point
	var series, nodes, edges []string
	for _, b := range bindings {
		id := topology.PublishedPortID(dockerview.Port{HostIP: b.hostIP, HostPort: 8080, Proto: "tcp"})
		labels := `instance="h:9100", container_id="c1", container="web", kind="container", direction="ingress", protocol="tcp", host_ip="` + b.hostIP + `", host_port="8080", peer="198.18.0.9"`
		series = append(series,
			series1("nta_nat_receive_bytes_total{"+labels+"}", b.rate*60),
			series1("nta_nat_transmit_bytes_total{"+labels+"}", 2*b.rate*60),
			series1(`nta_node_info{instance="h:9100", id="`+id+`", kind="published_port"}`, 0),
			series1(`nta_edge_info{instance="h:9100", id="publish:`+id+`", kind="publish", source="if:host/eth0", target="`+id+`"}`, 0))
		nodes = append(nodes, sample(`{instance="h:9100", id="`+id+`"}`, 3*b.rate))
		edges = append(edges, sample(`{instance="h:9100", id="publish:`+id+`"}`, 3*b.rate))
	}
	// A look-alike: egress of the same container is no published port's.
	series = append(series, series1(`nta_nat_receive_bytes_total{instance="h:9100", container_id="c1", container="web", kind="container", direction="egress", protocol="tcp", host_ip="", host_port="", peer="192.0.2.1:443"}`, 6000))
	grafana := strings.NewReplacer(`"$instance"`, `".*"`, "$__rate_interval", "5m")
	test := "evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n" + strings.Join(series, "") +
		"    promql_expr_test:\n" +
		expr(grafana.Replace(nodeStatExpr(nodeStats[0])), nodes) +
		expr(grafana.Replace(edgeStatExpr(edgeStats[0])), edges)
	f := filepath.Join(t.TempDir(), "nodegraph.test.yml")
	if err := os.WriteFile(f, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s\ntest file:\n%s", err, out, test)
	}
}

// series1 is an input series growing by perMinute every minute, or an
// info series of value 1 (perMinute 0).
func series1(s string, perMinute int) string {
	values := "0+" + strconv.Itoa(perMinute) + "x10"
	if perMinute == 0 {
		values = "1+0x10"
	}
	return "      - series: '" + s + "'\n        values: '" + values + "'\n"
}

func sample(labels string, v int) string {
	return "          - labels: '" + labels + "'\n            value: " + strconv.Itoa(v) + "\n"
}

func expr(e string, samples []string) string {
	return "      - expr: '" + strings.ReplaceAll(e, "'", "''") + "'\n        eval_time: 8m\n        exp_samples:\n" + strings.Join(samples, "")
}
