package e2e

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
)

// Without CAP_NET_ADMIN the nat collector reports success 0 and one log
// line naming the capability; the other collectors are unaffected.
func TestNATWithoutNetAdminSaysWhatIsMissing(t *testing.T) {
	requireNATLab(t)
	testenv.RequireCommand(t, "setpriv", "Debian package util-linux")
	addr := testenv.FreeAddr(t)
	p := testenv.Start(t, "nta-exporter", "setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin", "--",
		testenv.ExporterBinary(t), "--web.listen-address="+addr, "--no-collector.libvirt")
	p.WaitHTTP(t, "http://"+addr+"/metrics", 20*time.Second)
	time.Sleep(3500 * time.Millisecond) // a few reconnection attempts (1 s, 2 s)
	m, err := testenv.FetchMetrics("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for c, want := range map[string]float64{"nat": 0, "netns": 1, "links": 1, "docker": 1, "graph": 1} {
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": c}).Value; v != want {
			t.Errorf("collector %s success %v, want %v", c, v, want)
		}
	}
	if n := countLines(p.Logs.String(), "conntrack unavailable", "CAP_NET_ADMIN"); n != 1 {
		t.Errorf("%d log lines about CAP_NET_ADMIN, want 1:\n%s", n, p.Logs.String())
	}
	if n := countLines(p.Logs.String(), "missing privileges", "CAP_NET_ADMIN"); n != 1 {
		t.Errorf("the start-up privilege check does not name CAP_NET_ADMIN:\n%s", p.Logs.String())
	}
}

// An event storm on a tiny socket buffer: the kernel drops events
// (ENOBUFS), nta counts the receive error, re-dials and re-dumps, and once
// a dump has run the connection count is exact again — every datagram is a
// DNAT'd entry still in the table (unreplied UDP, 30 s).
func TestNATEventStormIsRepairedByTheNextDump(t *testing.T) {
	requireNATLab(t)
	image := testimage.Ensure(t)
	o := newOutside(t, 1)
	n, _ := rand.Int(rand.Reader, big.NewInt(10000))
	port := 30000 + int(n.Int64())
	ctr := testimage.RunContainer(t, "nt-natstorm", "-p", fmt.Sprintf("%d:80/udp", port), image)
	e := testenv.StartExporter(t, "--collector.nat.read-buffer=4096", "--collector.nat.resync=2s", "--no-collector.libvirt")
	testenv.Eventually(t, "nat collector up and the container known", 15*time.Second, func() error {
		m := e.Scrape()
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "nat"}).Value; v != 1 {
			return fmt.Errorf("nat success %v", v)
		}
		if len(m.All("nta_docker_published_port_info", map[string]string{"container": ctr})) == 0 {
			return fmt.Errorf("published port not in the Docker view yet")
		}
		return nil
	})
	const storm = 20000
	sent := sendUDP(t, o.ns, []string{o.nsIP}, [2]int{20000, 20000 + storm}, fmt.Sprintf("%s:%d", o.hostIP, port), 0)
	if sent != storm {
		t.Fatalf("sent %d of %d datagrams", sent, storm)
	}
	match := map[string]string{"container": ctr, "host_port": strconv.Itoa(port), "protocol": "udp"}
	testenv.Eventually(t, "the exact count after a dump", 20*time.Second, func() error {
		ct := len(conntrackL(t, "-p", "udp", "-d", o.hostIP, "--dport", strconv.Itoa(port)))
		v := e.Scrape().One(t, "nta_nat_published_port_connections_opened_total", match).Value
		if ct != storm || v != storm {
			return fmt.Errorf("nta %v, conntrack -L %d, sent %d", v, ct, storm)
		}
		return nil
	})
	// The NEW events the kernel dropped are the connections a re-dump found
	// that no event named; they are counted at the dump after it.
	var errs, lost float64
	testenv.Eventually(t, "receive errors and lost events counted", 10*time.Second, func() error {
		m := e.Scrape()
		errs = m.One(t, "nta_nat_receive_errors_total", nil).Value
		lost = m.One(t, "nta_nat_events_lost_total", nil).Value
		if errs == 0 || lost == 0 {
			return fmt.Errorf("receive errors %v, events lost %v with a 4 KiB buffer under a storm of %d events", errs, lost, storm)
		}
		return nil
	})
	t.Logf("storm of %d new connections: %v receive errors, %v events made up by dumps", storm, errs, lost)
	if lost > storm {
		t.Errorf("%v events lost of %d", lost, storm)
	}
}
