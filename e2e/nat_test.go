package e2e

import (
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
)

// outside is a namespace of the test's own standing for the world beyond
// the host: a veth to the host with addresses from 198.18.0.0/15 and its
// default route through the host end.
type outside struct {
	ns, hostIf   string
	hostIP, nsIP string
	extra        []string // more addresses of the namespace (198.19.N.3 …)
}

// newOutside creates the namespace with extra addresses besides nsIP (at
// most 4) on a /29.
func newOutside(t testing.TB, extra int) *outside {
	t.Helper()
	n, _ := rand.Int(rand.Reader, big.NewInt(250))
	sub := fmt.Sprintf("198.19.%d", n.Int64()+1)
	h := testenv.RandHex(3)
	o := &outside{ns: "nt-nat-" + h, hostIf: "ntnat" + h, hostIP: sub + ".1", nsIP: sub + ".2"}
	t.Cleanup(func() {
		testenv.RunQuiet("ip", "link", "del", o.hostIf)
		testenv.RunQuiet("ip", "netns", "del", o.ns)
	})
	testenv.Run(t, "ip", "netns", "add", o.ns)
	testenv.Run(t, "ip", "link", "add", o.hostIf, "type", "veth", "peer", "name", "eth0", "netns", o.ns)
	testenv.Run(t, "ip", "addr", "add", o.hostIP+"/29", "dev", o.hostIf)
	testenv.Run(t, "ip", "link", "set", o.hostIf, "up")
	testenv.Run(t, "ip", "-n", o.ns, "addr", "add", o.nsIP+"/29", "dev", "eth0")
	for i := range min(extra, 4) {
		a := fmt.Sprintf("%s.%d", sub, 3+i)
		testenv.Run(t, "ip", "-n", o.ns, "addr", "add", a+"/29", "dev", "eth0")
		o.extra = append(o.extra, a)
	}
	testenv.Run(t, "ip", "-n", o.ns, "link", "set", "eth0", "up")
	testenv.Run(t, "ip", "-n", o.ns, "link", "set", "lo", "up")
	testenv.Run(t, "ip", "-n", o.ns, "route", "add", "default", "via", o.hostIP)
	return o
}

// ctEntry is one line of `conntrack -L`: both directions' counters.
type ctEntry struct {
	line                                             string
	origPackets, origBytes, replyPackets, replyBytes uint64
}

// conntrackL reads the kernel's table with the conntrack CLI, the
// independent reading nta's counters are compared with.
func conntrackL(t testing.TB, args ...string) []ctEntry {
	t.Helper()
	var out []ctEntry
	for _, line := range strings.Split(stdout(t, "conntrack", append([]string{"-L"}, args...)...), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		e := ctEntry{line: line}
		var pk, by []uint64
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "packets="); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				pk = append(pk, n)
			}
			if v, ok := strings.CutPrefix(f, "bytes="); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				by = append(by, n)
			}
		}
		if len(pk) == 2 && len(by) == 2 {
			e.origPackets, e.replyPackets, e.origBytes, e.replyBytes = pk[0], pk[1], by[0], by[1]
		}
		out = append(out, e)
	}
	return out
}

func sumCT(es []ctEntry) (e ctEntry) {
	for _, x := range es {
		e.origPackets += x.origPackets
		e.origBytes += x.origBytes
		e.replyPackets += x.replyPackets
		e.replyBytes += x.replyBytes
	}
	return e
}

// maxHeader is the most TCP/IP header one IPv4 packet carries (20 bytes
// IP + 40 bytes TCP with options): conntrack counts IP lengths.
const maxHeader = 60

func requireNATLab(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t)
	testimage.RequireDocker(t)
	testenv.RequireCommand(t, "conntrack", "Debian package conntrack")
	_, err := os.Stat("/proc/sys/net/netfilter/nf_conntrack_max")
	testenv.Require(t, err == nil, "nf_conntrack loaded (modprobe nf_conntrack)")
}

// keepAccounting restores net.netfilter.nf_conntrack_acct after the test:
// --collector.nat.accounting sets it for the whole host.
func keepAccounting(t testing.TB) {
	const p = "/proc/sys/net/netfilter/nf_conntrack_acct"
	prev, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.WriteFile(p, prev, 0) })
}

// North-south traffic through Docker's NAT, against the real dockerd and
// kernel: a client outside makes N connections with exact payloads to the
// host's address at a container's published port (DNAT), and the container
// sends exact payloads to a server outside (MASQUERADE). nta's connection
// counts equal what was made and what `conntrack -L` lists; its bytes equal
// conntrack's and exceed the payload by at most the TCP/IP headers.
func TestNATIngressAndEgressAttributedToTheContainer(t *testing.T) {
	requireNATLab(t)
	keepAccounting(t)
	image := testimage.Ensure(t)
	o := newOutside(t, 0)
	n, _ := rand.Int(rand.Reader, big.NewInt(10000))
	port := 40000 + int(n.Int64())
	ctr := testimage.RunContainer(t, "nt-nat", "-p", fmt.Sprintf("%d:80", port), image)
	ctrIP := strings.TrimSpace(testenv.Run(t, "docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", ctr))
	ctrID := strings.TrimSpace(testenv.Run(t, "docker", "inspect", "-f", "{{.Id}}", ctr))

	e := testenv.StartExporter(t, "--collector.nat.accounting", "--collector.nat.resync=1s", "--no-collector.libvirt")
	testenv.Eventually(t, "nat collector up with accounting", 15*time.Second, func() error {
		m := e.Scrape()
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "nat"}).Value; v != 1 {
			return fmt.Errorf("nat success %v", v)
		}
		if v := m.One(t, "nta_nat_accounting_enabled", nil).Value; v != 1 {
			return fmt.Errorf("accounting %v", v)
		}
		return nil
	})

	// Ingress: N connections from outside to HOST_IP:PORT, each with an exact payload.
	const conns, payload = 5, 20000
	buf := make([]byte, payload)
	for i := range buf {
		buf[i] = byte(i)
	}
	for range conns {
		var c net.Conn
		var err error
		inNetns(t, o.ns, func() { c, err = net.DialTimeout("tcp", fmt.Sprintf("%s:%d", o.hostIP, port), 5*time.Second) })
		if err != nil {
			t.Fatalf("dial the published port from outside: %v", err)
		}
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, c) // the app closes once it has read everything
		c.Close()
	}

	// Egress: the container sends M payloads to a server outside.
	const sends, egressPayload = 3, 30000
	var ln net.Listener
	var err error
	inNetns(t, o.ns, func() { ln, err = net.Listen("tcp", o.nsIP+":9000") })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var served []string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			nb, _ := io.Copy(io.Discard, c)
			mu.Lock()
			served = append(served, fmt.Sprintf("%s %d", c.RemoteAddr(), nb))
			mu.Unlock()
			c.Close()
		}
	}()
	out := testenv.Run(t, "docker", "exec", ctr, "/app", "-send", o.nsIP+":9000", "-bytes", fmt.Sprint(egressPayload), "-chunk", "4096", "-count", fmt.Sprint(sends))
	if strings.Count(out, "sent ") != sends {
		t.Fatalf("sender: %s", out)
	}
	mu.Lock()
	for _, s := range served {
		// MASQUERADE: the server sees the host's address, not the container's.
		if !strings.HasPrefix(s, o.hostIP+":") || !strings.HasSuffix(s, fmt.Sprintf(" %d", egressPayload)) {
			t.Errorf("server outside saw %q, want %s:* and %d bytes", s, o.hostIP, egressPayload)
		}
	}
	mu.Unlock()

	ingressCT := func() []ctEntry {
		return conntrackL(t, "-p", "tcp", "-s", o.nsIP, "-d", o.hostIP, "--dport", strconv.Itoa(port))
	}
	egressCT := func() []ctEntry {
		return conntrackL(t, "-p", "tcp", "-s", ctrIP, "-d", o.nsIP, "--dport", "9000")
	}
	ingress := map[string]string{"container": ctr, "direction": "ingress", "peer": o.nsIP}
	egress := map[string]string{"container": ctr, "direction": "egress", "peer": o.nsIP + ":9000"}
	// The connections are closed (TIME_WAIT): conntrack's counters no longer
	// move, so nta (re-dumping every second) must agree with them exactly.
	testenv.Eventually(t, "nta agrees with conntrack -L", 15*time.Second, func() error {
		ict, ect := ingressCT(), egressCT()
		m := e.Scrape()
		check := func(what string, match map[string]string, ct []ctEntry, wantConns int, rx, tx uint64) error {
			s := m.All("nta_nat_connections_opened_total", match)
			if len(s) != 1 {
				return fmt.Errorf("%s: %d opened series for %v", what, len(s), match)
			}
			if len(ct) != wantConns || s[0].Value != float64(wantConns) {
				return fmt.Errorf("%s: nta opened %v, conntrack -L lists %d, made %d", what, s[0].Value, len(ct), wantConns)
			}
			if s[0].Labels["container_id"] != ctrID {
				return fmt.Errorf("%s: container_id %s", what, s[0].Labels["container_id"])
			}
			if got := m.One(t, "nta_nat_receive_bytes_total", match).Value; got != float64(rx) {
				return fmt.Errorf("%s: nta received %v bytes, conntrack says %d", what, got, rx)
			}
			if got := m.One(t, "nta_nat_transmit_bytes_total", match).Value; got != float64(tx) {
				return fmt.Errorf("%s: nta transmitted %v bytes, conntrack says %d", what, got, tx)
			}
			return nil
		}
		is, es := sumCT(ict), sumCT(ect)
		if err := check("ingress", ingress, ict, conns, is.origBytes, is.replyBytes); err != nil {
			return err
		}
		return check("egress", egress, ect, sends, es.replyBytes, es.origBytes)
	})
	m := e.Scrape()
	for _, l := range append(ingressCT(), egressCT()...) {
		t.Logf("conntrack -L: %s", l.line)
	}
	in := m.One(t, "nta_nat_connections_opened_total", ingress)
	if in.Labels["host_port"] != strconv.Itoa(port) || in.Labels["protocol"] != "tcp" || in.Labels["host_ip"] != "0.0.0.0" {
		t.Errorf("ingress labels %v, want host 0.0.0.0:%d/tcp", in.Labels, port)
	}
	// Bytes against what was sent: the payload plus at most the headers of
	// every packet.
	within := func(what string, bytes, packets float64, pay int) {
		t.Logf("%s: %v bytes in %v packets for %d payload bytes", what, bytes, packets, pay)
		if bytes < float64(pay) || bytes > float64(pay)+maxHeader*packets {
			t.Errorf("%s: %v bytes in %v packets for %d payload bytes", what, bytes, packets, pay)
		}
	}
	within("ingress received", m.One(t, "nta_nat_receive_bytes_total", ingress).Value,
		m.One(t, "nta_nat_receive_packets_total", ingress).Value, conns*payload)
	within("egress transmitted", m.One(t, "nta_nat_transmit_bytes_total", egress).Value,
		m.One(t, "nta_nat_transmit_packets_total", egress).Value, sends*egressPayload)
	if v := m.One(t, "nta_nat_events_lost_total", nil).Value; v != 0 {
		t.Errorf("events lost %v in a quiet lab", v)
	}
	loopbackAndHostConnections(t, e, ctr, o.hostIP, port)
	// The per-port total: the outside client's N and the host's one; the
	// loopback connection through docker-proxy is not among them.
	if v := e.Scrape().One(t, "nta_nat_published_port_connections_opened_total",
		map[string]string{"container": ctr, "host_port": strconv.Itoa(port), "protocol": "tcp"}).Value; v != conns+1 {
		t.Errorf("published port total %v, want %d", v, conns+1)
	}

	// The north-south path in the Node Graph: host → published port → container.
	portID := fmt.Sprintf("port:0.0.0.0:%d/tcp", port)
	if len(m.All("nta_node_info", map[string]string{"id": portID, "kind": "published_port"})) != 1 ||
		len(m.All("nta_edge_info", map[string]string{"source": portID, "target": "container:" + ctrID[:12], "kind": "dnat"})) != 1 ||
		len(m.All("nta_edge_info", map[string]string{"source": "netns:host", "target": portID, "kind": "publish"})) != 1 {
		t.Errorf("published port %s not on the host → port → container path", portID)
	}
}

// loopbackAndHostConnections checks what the README says of connections
// from the host itself: to 127.0.0.1:PORT they go through docker-proxy and
// are not DNAT'd (nta shows none), to one of the host's own addresses they
// are DNAT'd in OUTPUT and show as ingress from that address.
func loopbackAndHostConnections(t *testing.T, e *testenv.Exporter, ctr, hostIP string, port int) {
	send := func(addr string) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s from the host: %v", addr, err)
		}
		_, _ = c.Write([]byte("hello"))
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	}
	send(fmt.Sprintf("127.0.0.1:%d", port))
	if lo := conntrackL(t, "-p", "tcp", "-s", "127.0.0.1", "--dport", strconv.Itoa(port)); len(lo) == 0 || strings.Contains(lo[0].line, "src=172.17.") {
		t.Fatalf("conntrack -L: loopback connection not seen or DNAT'd: %v", lo)
	}
	send(fmt.Sprintf("%s:%d", hostIP, port))
	fromHost := map[string]string{"container": ctr, "direction": "ingress", "peer": hostIP}
	testenv.Eventually(t, "host-originated connection attributed", 10*time.Second, func() error {
		if s := e.Scrape().All("nta_nat_connections_opened_total", fromHost); len(s) != 1 || s[0].Value != 1 {
			return fmt.Errorf("from the host's own address: %v", s)
		}
		return nil
	})
	m := e.Scrape()
	for _, s := range m.All("nta_nat_connections_opened_total", map[string]string{"container": ctr}) {
		if p := s.Labels["peer"]; p == "127.0.0.1" || strings.HasPrefix(p, "172.17.") {
			t.Errorf("a docker-proxy connection was attributed: %v", s.Labels)
		}
	}
}
