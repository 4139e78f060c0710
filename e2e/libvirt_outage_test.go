package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// libvirtSocket is the real libvirtd's RPC socket.
const libvirtSocket = "/var/run/libvirt/libvirt-sock"

// libvirtProxy stands in for libvirtd's socket: it forwards to the real
// one, or accepts and never answers (a hung libvirtd), and can vanish. The
// exporter sees a libvirtd that dies and comes back while the real daemon,
// which other tests and the QEMU guests use, keeps running.
type libvirtProxy struct {
	path  string
	mu    sync.Mutex
	l     *net.UnixListener
	conns []net.Conn
}

// start listens on path; with hang, accepted connections are held and
// never answered, else they are forwarded to libvirtd.
func (p *libvirtProxy) start(t testing.TB, hang bool) {
	t.Helper()
	_ = os.Remove(p.path) // a stale socket left by stop
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			if hang {
				continue
			}
			up, err := net.Dial("unix", libvirtSocket)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop closes the listener and every connection, as a killed libvirtd
// does; with unlink false the socket file stays behind (connection refused),
// with unlink true it is gone (no such file).
func (p *libvirtProxy) stop(unlink bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.SetUnlinkOnClose(unlink)
		p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestLibvirtOutageKeepsScrapesAndRecovers: when libvirtd dies (stale
// socket), hangs, or comes back, scrapes keep answering quickly, the
// libvirt collector reports success 0 with one warning per outage while
// every other collector is unaffected, and the VM returns to the view by
// itself without an exporter restart.
func TestLibvirtOutageKeepsScrapesAndRecovers(t *testing.T) {
	l := newVMLab(t)
	v := l.createVM(t, "o", l.bridgeNIC())
	p := &libvirtProxy{path: t.TempDir() + "/libvirt-sock"}
	p.start(t, false)
	t.Cleanup(func() { p.stop(true) })
	e := testenv.StartExporter(t, "--collector.libvirt.socket="+p.path, "--collector.libvirt.resync=5s", "--collector.libvirt.timeout=1s")
	m := waitVMs(t, e, v)
	tap := m.One(t, "nta_libvirt_interface_info", map[string]string{"uuid": v.uuid}).Labels["interface"]
	others := map[string]float64{}
	for _, s := range m.All("nta_collector_success", nil) {
		if c := s.Labels["collector"]; c != "libvirt" {
			others[c] = s.Value
		}
	}
	warnings := func() int { return countLines(e.Logs.String(), "level=WARN", "libvirt unavailable") }
	if n := warnings(); n != 0 {
		t.Fatalf("%d libvirt warnings before any outage:\n%s", n, e.Logs.String())
	}

	// down checks one scrape taken during an outage.
	down := func(m testenv.Metrics) error {
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "libvirt"}).Value; v != 0 {
			return fmt.Errorf("libvirt success %v", v)
		}
		for c, was := range others {
			if got := m.One(t, "nta_collector_success", map[string]string{"collector": c}).Value; got != was {
				t.Errorf("collector %s: success %v during the libvirt outage, %v before", c, got, was)
			}
		}
		for _, f := range []string{"nta_libvirt_domain_info", "nta_libvirt_interface_info", "nta_vm_network_transmit_packets_total"} {
			if s := m.All(f, map[string]string{"uuid": v.uuid}); len(s) != 0 {
				return fmt.Errorf("%s still served from a dead connection: %v", f, s)
			}
		}
		if len(m.All("nta_interface_info", map[string]string{"netns": "host", "interface": tap})) != 1 {
			t.Errorf("tap %s left nta_interface_info while libvirt is down", tap)
		}
		return nil
	}
	back := func(what string) {
		t.Helper()
		began := time.Now()
		testenv.Eventually(t, what, 30*time.Second, func() error {
			m := e.Scrape()
			if v := m.One(t, "nta_collector_success", map[string]string{"collector": "libvirt"}).Value; v != 1 {
				return fmt.Errorf("libvirt success %v", v)
			}
			d := m.All("nta_libvirt_domain_info", map[string]string{"uuid": v.uuid, "domain": v.name, "state": "running"})
			n := m.All("nta_libvirt_interface_info", map[string]string{"uuid": v.uuid, "interface": tap})
			if len(d) != 1 || len(n) != 1 {
				return fmt.Errorf("%s not back in the view: domain %v NIC %v", v.name, d, n)
			}
			return nil
		})
		t.Logf("%s after %.1fs", what, time.Since(began).Seconds())
	}

	// 1. libvirtd killed: the socket file stays, nothing listens.
	p.stop(false)
	testenv.Eventually(t, "libvirt collector reports no data", 10*time.Second, func() error { return down(e.Scrape()) })
	for range 5 { // 3 s: the watcher re-dials the stale socket a few times
		if err := down(e.Scrape()); err != nil {
			t.Error(err)
		}
		time.Sleep(600 * time.Millisecond)
	}
	if n := warnings(); n != 1 {
		t.Errorf("%d warnings for one outage, its re-dials and 6+ scrapes, want 1:\n%s", n, e.Logs.String())
	}
	if n := countLines(e.Logs.String(), "libvirt still unavailable"); n == 0 {
		t.Errorf("no re-dial logged (at debug) within 3s of the outage:\n%s", e.Logs.String())
	}
	for _, line := range strings.Split(e.Logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "libvirt unavailable") && !strings.Contains(line, p.path) {
			t.Errorf("the warning does not name the socket %s: %s", p.path, line)
		}
	}
	p.start(t, false)
	back("VM back after libvirtd returned")

	// 2. libvirtd hangs: connections are accepted and never answered.
	p.stop(true)
	p.start(t, true)
	deadline := time.Now().Add(6 * time.Second)
	sawDown := false
	for time.Now().Before(deadline) {
		began := time.Now()
		m := e.Scrape()
		if d := time.Since(began); d > 2*time.Second {
			t.Errorf("a scrape took %v while libvirtd hangs", d)
		}
		sawDown = sawDown || down(m) == nil
		time.Sleep(200 * time.Millisecond)
	}
	if !sawDown {
		t.Errorf("libvirt collector never reported success 0 while libvirtd hung (call timeout 1s)")
	}
	p.stop(true)
	p.start(t, false)
	back("VM back after libvirtd stopped hanging")

	if n := warnings(); n != 2 {
		t.Errorf("%d warnings for two outages, want 2 (one each):\n%s", n, e.Logs.String())
	}
	if n := countLines(e.Logs.String(), "level=ERROR", "libvirt"); n != 0 {
		t.Errorf("an unavailable libvirtd is not an exporter error; %d error lines:\n%s", n, e.Logs.String())
	}
	if n := countLines(e.Logs.String(), "libvirt view synced"); n < 3 {
		t.Errorf("%d 'libvirt view synced' lines after start and two recoveries, want ≥ 3", n)
	}
}

// TestLibvirtAbsentIsNoDataNotAnError: on a host without libvirtd (no
// socket) the exporter starts, the libvirt collector reports success 0 on
// every scrape with a single warning that names the socket and what to do,
// and the other collectors serve as usual.
func TestLibvirtAbsentIsNoDataNotAnError(t *testing.T) {
	testenv.RequireRoot(t)
	sock := t.TempDir() + "/no-libvirt-sock"
	e := testenv.StartExporter(t, "--collector.libvirt.socket="+sock, "--collector.libvirt.resync=5s")
	deadline := time.Now().Add(3 * time.Second) // the watcher re-dials meanwhile
	for n := 0; n < 5 || time.Now().Before(deadline); n++ {
		m := e.Scrape()
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "libvirt"}).Value; v != 0 {
			t.Fatalf("libvirt success %v without libvirtd, want 0", v)
		}
		for _, c := range []string{"links", "netns", "graph"} {
			if v := m.One(t, "nta_collector_success", map[string]string{"collector": c}).Value; v != 1 {
				t.Errorf("collector %s: success %v without libvirtd, want 1", c, v)
			}
		}
		for _, f := range []string{"nta_libvirt_domain_info", "nta_libvirt_network_info", "nta_libvirt_xml_errors_total"} {
			if s := m.All(f, nil); len(s) != 0 {
				t.Errorf("%s exported without libvirtd: %v", f, s)
			}
		}
		if len(m.All("nta_interface_info", map[string]string{"netns": "host", "interface": "lo"})) != 1 {
			t.Fatalf("host interfaces missing without libvirtd")
		}
		time.Sleep(300 * time.Millisecond)
	}
	logs := e.Logs.String()
	if n := countLines(logs, "level=WARN", "libvirt unavailable", sock, "libvirtd"); n != 1 {
		t.Errorf("want exactly one warning naming %s and libvirtd, got %d:\n%s", sock, n, logs)
	}
	if n := countLines(logs, "level=ERROR"); n != 0 {
		t.Errorf("an absent libvirtd is not an exporter error; %d error lines:\n%s", n, logs)
	}
}
