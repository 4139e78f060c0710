package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// ipStats reads an interface's stats64 with `ip -j -s link` inside a
// namespace: the independent reading the exporter's counters are checked against.
func ipStats(t testing.TB, nsPath, dev string) (rx, tx uint64) {
	t.Helper()
	l, ok := ipLinks(t, nsPath)[dev]
	if !ok {
		t.Fatalf("ip link in %s: no %s", nsPath, dev)
	}
	return l.Stats64.Rx.Bytes, l.Stats64.Tx.Bytes
}

func counterOf(t testing.TB, m testenv.Metrics, name, container, network string) float64 {
	t.Helper()
	return m.One(t, name, map[string]string{"container": container, "network": network}).Value
}

// labTraffic sends an exact number of bytes from nt-both to nt-db over
// lnmp and checks the per-container counters cover it, from each
// container's own point of view, and agree with ip's reading.
func labTraffic(t *testing.T, e *testenv.Exporter) {
	const payload = 4 << 20 // 4 MiB
	dbIP := strings.TrimSpace(testenv.Run(t, "docker", "inspect", "-f", `{{(index .NetworkSettings.Networks "lnmp").IPAddress}}`, "nt-db"))
	bothNS, _ := sandbox(t, "nt-both")
	dbNS, _ := sandbox(t, "nt-db")
	lnmpIf := func(c string) string {
		return e.Scrape().One(t, "nta_docker_endpoint_info", map[string]string{"container": c, "network": labNet}).Labels["interface"]
	}
	bothIf, dbIf := lnmpIf("nt-both"), lnmpIf("nt-db")

	before := e.Scrape()
	txBefore := counterOf(t, before, "nta_container_network_transmit_bytes_total", "nt-both", labNet)
	rxBefore := counterOf(t, before, "nta_container_network_receive_bytes_total", "nt-db", labNet)
	out := testenv.Run(t, "docker", "exec", "nt-both", "/app", "-send", dbIP+":80", "-bytes", fmt.Sprint(payload), "-chunk", "65536")
	if !strings.Contains(out, fmt.Sprintf("sent %d bytes", payload)) {
		t.Fatalf("sender: %s", out)
	}
	time.Sleep(1100 * time.Millisecond) // past the host-scan cache age
	_, ipTxBoth := ipStats(t, bothNS, bothIf)
	ipRxDB, _ := ipStats(t, dbNS, dbIf)
	after := e.Scrape()
	_, ipTxBoth2 := ipStats(t, bothNS, bothIf)
	ipRxDB2, _ := ipStats(t, dbNS, dbIf)

	tx := counterOf(t, after, "nta_container_network_transmit_bytes_total", "nt-both", labNet)
	rx := counterOf(t, after, "nta_container_network_receive_bytes_total", "nt-db", labNet)
	// TCP/IP/Ethernet headers and ACKs add overhead; 4 MiB in ≥1448-byte
	// segments costs < 3% headers. Allow 10% + 64 KiB, never less than the payload.
	limit := float64(payload)*1.10 + 65536
	if d := tx - txBefore; d < payload || d > limit {
		t.Errorf("nt-both transmit delta %.0f bytes, want within [%d, %.0f]", d, payload, limit)
	}
	if d := rx - rxBefore; d < payload || d > limit {
		t.Errorf("nt-db receive delta %.0f bytes, want within [%d, %.0f]", d, payload, limit)
	}
	// The exporter's reading lies between two readings by ip taken around the scrape.
	if tx < float64(ipTxBoth) || tx > float64(ipTxBoth2) {
		t.Errorf("nt-both tx %.0f outside ip's [%d, %d]", tx, ipTxBoth, ipTxBoth2)
	}
	if rx < float64(ipRxDB) || rx > float64(ipRxDB2) {
		t.Errorf("nt-db rx %.0f outside ip's [%d, %d]", rx, ipRxDB, ipRxDB2)
	}
	// Point of view: the host-side veth of nt-db transmitted what nt-db received.
	hostVeth := after.One(t, "nta_docker_endpoint_info", map[string]string{"container": "nt-db", "network": labNet}).Labels["host_interface"]
	hostTx := after.One(t, "nta_interface_transmit_bytes_total", map[string]string{"netns": "host", "interface": hostVeth}).Value
	hostTxBefore := before.One(t, "nta_interface_transmit_bytes_total", map[string]string{"netns": "host", "interface": hostVeth}).Value
	if d := hostTx - hostTxBefore; d < payload {
		t.Errorf("host veth %s transmit delta %.0f < payload %d: direction wrong?", hostVeth, d, payload)
	}
}

// labLifecycle starts and removes containers while the exporter runs.
func labLifecycle(t *testing.T, l *lab, e *testenv.Exporter) {
	l.run(t, "nt-late", "--network", labNet)
	id := strings.TrimSpace(testenv.Run(t, "docker", "inspect", "-f", "{{.Id}}", "nt-late"))
	testenv.Eventually(t, "started container exported", 10*time.Second, func() error {
		m := e.Scrape()
		if len(m.All("nta_docker_container_info", map[string]string{"container": "nt-late", "state": "running"})) != 1 {
			return fmt.Errorf("nt-late not in nta_docker_container_info")
		}
		ep := m.All("nta_docker_endpoint_info", map[string]string{"container": "nt-late", "network": labNet})
		if len(ep) != 1 || ep[0].Labels["host_interface"] == "" {
			return fmt.Errorf("nt-late endpoint not resolved: %v", ep)
		}
		if len(m.All("nta_node_info", map[string]string{"id": "container:" + id[:12]})) != 1 {
			return fmt.Errorf("nt-late not a graph node")
		}
		return nil
	})
	testenv.Run(t, "docker", "rm", "-f", "nt-app")
	testenv.Eventually(t, "removed container gone", 10*time.Second, func() error {
		m := e.Scrape()
		for _, f := range []string{"nta_docker_container_info", "nta_docker_endpoint_info", "nta_container_network_receive_bytes_total"} {
			if s := m.All(f, map[string]string{"container": "nt-app"}); len(s) != 0 {
				return fmt.Errorf("%s still has nt-app: %v", f, s)
			}
		}
		return nil
	})
}
