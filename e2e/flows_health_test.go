package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
)

// flowsHealth waits until the exporter reports the flows collector and
// returns nta_collector_success{collector="flows"} and nta_capture_interfaces.
func flowsHealth(t *testing.T, e *testenv.Exporter) (success, ifaces float64) {
	t.Helper()
	testenv.Eventually(t, "the flows collector reported", 20*time.Second, func() error {
		m, err := testenv.FetchMetrics(e.URL + "/metrics")
		if err != nil {
			return err
		}
		s := m.All("nta_collector_success", map[string]string{"collector": "flows"})
		n := m.All("nta_capture_interfaces", nil)
		if len(s) != 1 || len(n) != 1 {
			return fmt.Errorf("success %v, capture interfaces %v", s, n)
		}
		success, ifaces = s[0].Value, n[0].Value
		return nil
	})
	return success, ifaces
}

// TestFlowsFailWhenNothingCanBeCaptured: capture that cannot work is a
// failed flows collector (success 0), not "0 interfaces, success 1":
// without CAP_NET_RAW (even before any interface is selected), and with a
// filter the kernel rejects (division by a constant zero), which is
// reported once instead of being retried every rescan.
func TestFlowsFailWhenNothingCanBeCaptured(t *testing.T) {
	testenv.RequireRoot(t)
	t.Run("filter rejected by the kernel", func(t *testing.T) {
		e := testenv.StartExporter(t, "--collector.flows", "--collector.flows.filter-bpf=2,52 0 0 0,6 0 0 65535",
			"--collector.flows.interfaces=lo", "--collector.flows.roles=none", "--no-collector.libvirt")
		if s, n := flowsHealth(t, e); s != 0 || n != 0 {
			t.Errorf("flows success %v, capture interfaces %v; want 0 and 0", s, n)
		}
		for range 3 {
			time.Sleep(500 * time.Millisecond)
			if _, err := testenv.Fetch(e.URL + "/metrics"); err != nil {
				t.Fatal(err)
			}
		}
		logs := e.Logs.String()
		// Once by the capture when it stops, once by the collector when it
		// starts failing: no retry, no repetition per scrape.
		if n := countLines(logs, `msg="packet capture stopped;`, "kernel rejected the capture filter"); n != 1 {
			t.Errorf("the capture logs the rejected filter %d times, want once:\n%s", n, testenv.Tail(logs, 20))
		}
		if n := countLines(logs, "collector failed", "collector=flows"); n != 1 {
			t.Errorf("the flows collector failure is logged %d times over 4 scrapes, want once:\n%s", n, testenv.Tail(logs, 20))
		}
		if !strings.Contains(logs, "--collector.flows.filter-bpf") {
			t.Errorf("the error does not name the flag:\n%s", testenv.Tail(logs, 20))
		}
	})
	t.Run("no CAP_NET_RAW", func(t *testing.T) {
		testimage.RequireDocker(t)
		testenv.RequireCommand(t, "setpriv", "Debian package util-linux")
		e := startAsUser(t, "sys_admin,sys_ptrace,dac_read_search", "--collector.flows")
		if s, n := flowsHealth(t, e); s != 0 || n != 0 {
			t.Errorf("flows success %v, capture interfaces %v; want 0 and 0", s, n)
		}
		if logs := e.Logs.String(); !strings.Contains(logs, "CAP_NET_RAW") {
			t.Errorf("logs do not name CAP_NET_RAW:\n%s", testenv.Tail(logs, 20))
		}
	})
}
