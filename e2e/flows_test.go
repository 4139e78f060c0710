package e2e

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
)

var interruptSignal = os.Interrupt

// flowKey is one 5-tuple and direction as the exporter labels it.
type flowKey struct{ dir, src, dst, sport, dport, proto string }

type flowCount struct{ packets, bytes float64 }

// reference decodes tcpdump's pcap with gopacket's own decoder (independent
// of nta's) into per-flow counts, and counts ARP frames.
func reference(t *testing.T, file, dir string, into map[flowKey]flowCount) (arp int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return arp
		}
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if pkt.Layer(layers.LayerTypeARP) != nil {
			arp++
			continue
		}
		ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			t.Fatalf("unexpected non-IPv4, non-ARP frame in the reference: %v", pkt)
		}
		k := flowKey{dir: dir, src: ip.SrcIP.String(), dst: ip.DstIP.String()}
		switch l := pkt.TransportLayer().(type) {
		case *layers.UDP:
			k.proto, k.sport, k.dport = "udp", fmt.Sprint(uint16(l.SrcPort)), fmt.Sprint(uint16(l.DstPort))
		case *layers.TCP:
			k.proto, k.sport, k.dport = "tcp", fmt.Sprint(uint16(l.SrcPort)), fmt.Sprint(uint16(l.DstPort))
		default:
			ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if !ok {
				// Portless protocols (the kernel's IGMP reports, say): named
				// like gopacket names them, ports 0.
				k.proto, k.sport, k.dport = strings.ToLower(ip.Protocol.String()), "0", "0"
				break
			}
			k.proto, k.sport, k.dport = "icmp", fmt.Sprint(ic.TypeCode.Type()), fmt.Sprint(ic.TypeCode.Code())
		}
		c := into[k]
		c.packets++
		c.bytes += float64(ci.Length)
		into[k] = c
	}
}

// ntaFlows returns the flow counters of one interface.
func ntaFlows(m testenv.Metrics, iface string) map[flowKey]flowCount {
	out := map[flowKey]flowCount{}
	for _, fam := range []string{"nta_flow_packets_total", "nta_flow_bytes_total"} {
		for _, s := range m.All(fam, map[string]string{"interface": iface}) {
			l := s.Labels
			k := flowKey{l["direction"], l["src"], l["dst"], l["src_port"], l["dst_port"], l["proto"]}
			c := out[k]
			if fam == "nta_flow_packets_total" {
				c.packets = s.Value
			} else {
				c.bytes = s.Value
			}
			out[k] = c
		}
	}
	return out
}

func delta(before, after map[flowKey]flowCount) map[flowKey]flowCount {
	out := map[flowKey]flowCount{}
	for k, a := range after {
		b := before[k]
		if d := (flowCount{a.packets - b.packets, a.bytes - b.bytes}); d.packets != 0 || d.bytes != 0 {
			out[k] = d
		}
	}
	return out
}

func dump(m map[flowKey]flowCount) string {
	var lines []string
	for k, c := range m {
		lines = append(lines, fmt.Sprintf("  %s %s %s:%s > %s:%s  %.0f pkts %.0f bytes", k.dir, k.proto, k.src, k.sport, k.dst, k.dport, c.packets, c.bytes))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func sumFamily(m testenv.Metrics, name string, match map[string]string) float64 {
	v := 0.0
	for _, s := range m.All(name, match) {
		v += s.Value
	}
	return v
}

// gratuitousARP builds an ARP reply claiming ip for mac, to broadcast.
func gratuitousARP(mac net.HardwareAddr, ip net.IP) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	binary.BigEndian.PutUint16(f[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(f[16:], 0x0800) // IPv4
	f[18], f[19] = 6, 4
	binary.BigEndian.PutUint16(f[20:], 2) // reply
	copy(f[22:28], mac)
	copy(f[28:32], ip.To4())
	copy(f[32:38], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[38:42], ip.To4())
	return f
}

// sendRaw writes frames on eth0 of a namespace with an AF_PACKET socket.
func sendRaw(t *testing.T, ns string, frames ...[]byte) {
	t.Helper()
	inNetns(t, ns, func() {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			t.Errorf("AF_PACKET: %v", err)
			return
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			t.Errorf("eth0: %v", err)
			return
		}
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		for _, f := range frames {
			if err := unix.Sendto(fd, f, 0, sa); err != nil {
				t.Errorf("sendto: %v", err)
			}
		}
	})
}

// startCapturing runs an exporter capturing only on iface, with 5-tuple
// flows and extra flags, and waits until capture runs there.
func startCapturing(t *testing.T, iface string, args ...string) *testenv.Exporter {
	t.Helper()
	e := testenv.StartExporter(t, append([]string{"--collector.flows", "--collector.flows.roles=none",
		"--collector.flows.interfaces=" + iface, "--collector.flows.granularity=5tuple"}, args...)...)
	testenv.Eventually(t, "capture on "+iface, 20*time.Second, func() error {
		if len(e.Scrape().All("nta_capture_kernel_packets_total", map[string]string{"interface": iface})) != 1 {
			return fmt.Errorf("not captured yet")
		}
		return nil
	})
	return e
}

// waitQuiet waits until no frame reached iface's flow table for 2 s.
func waitQuiet(t *testing.T, e *testenv.Exporter, iface string) {
	t.Helper()
	lbl := map[string]string{"interface": iface}
	last, since := -1.0, time.Now()
	testenv.Eventually(t, iface+" quiet for 2s", 30*time.Second, func() error {
		v := sumFamily(e.Scrape(), "nta_flow_input_packets_total", lbl)
		if v != last {
			last, since = v, time.Now()
		}
		if time.Since(since) < 2*time.Second {
			return fmt.Errorf("%v frames so far, last change %v ago", v, time.Since(since).Round(time.Millisecond))
		}
		return nil
	})
}

// TestFlowsExactOnNamespaces generates ICMP, UDP, TCP and ARP between two
// namespaces and checks the exporter's flow counters on the captured veth
// equal, flow by flow, what tcpdump saw on the same interface (decoded by
// gopacket), with zero kernel drops and flow sums equal to capture totals.
// Then it deletes the interface and checks capture releases it.
func TestFlowsExactOnNamespaces(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "tcpdump", "")
	testenv.RequireCommand(t, "ping", "")
	p := newNSPair(t, "nt-f", "10.78.0")
	e := startCapturing(t, p.ah, "--collector.flows.idle-timeout=10m", "--collector.flows.arp-conflict-window=1m")

	// Servers in namespace b.
	var udpConn net.PacketConn
	var tcpLn net.Listener
	inNetns(t, p.b, func() {
		var err error
		if udpConn, err = net.ListenPacket("udp4", ":9999"); err != nil {
			t.Fatal(err)
		}
		if tcpLn, err = net.Listen("tcp4", ":8080"); err != nil {
			t.Fatal(err)
		}
	})
	defer udpConn.Close()
	defer tcpLn.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := udpConn.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	received := make(chan int64, 1)
	go func() {
		c, err := tcpLn.Accept()
		if err != nil {
			received <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		received <- n
	}()

	// New links chatter for a few seconds (the bridge's unsolicited IGMP
	// reports, say); compare only once the link is quiet.
	waitQuiet(t, e, p.ah)
	in, out := startTcpdump(t, p.ah, "in"), startTcpdump(t, p.ah, "out")
	time.Sleep(300 * time.Millisecond)
	before := e.Scrape()

	testenv.Run(t, "ip", "netns", "exec", p.a, "ping", "-c", "5", "-i", "0.2", "-W", "1", p.bIP)
	var udpC net.Conn
	var tcpC net.Conn
	inNetns(t, p.a, func() {
		var err error
		if udpC, err = net.Dial("udp4", p.bIP+":9999"); err != nil {
			t.Fatal(err)
		}
		if tcpC, err = net.Dial("tcp4", p.bIP+":8080"); err != nil {
			t.Fatal(err)
		}
	})
	for i := 0; i < 17; i++ {
		size := 500
		if i >= 10 {
			size = 1200
		}
		if _, err := udpC.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	udpC.Close()
	const tcpBytes = 1 << 20
	if _, err := tcpC.Write(make([]byte, tcpBytes)); err != nil {
		t.Fatal(err)
	}
	tcpC.Close()
	if n := <-received; n != tcpBytes {
		t.Fatalf("server received %d bytes, want %d", n, tcpBytes)
	}
	fake, _ := net.ParseMAC("02:de:ad:be:ef:01")
	sendRaw(t, p.b, gratuitousARP(fake, net.ParseIP(p.aIP)), gratuitousARP(fake, net.ParseIP(p.aIP)))

	time.Sleep(1500 * time.Millisecond) // ring block timeout + snapshot publication
	after := e.Scrape()
	in.stop(t)
	out.stop(t)

	ref := map[flowKey]flowCount{}
	arp := reference(t, in.file, "in", ref) + reference(t, out.file, "out", ref)
	got := delta(ntaFlows(before, p.ah), ntaFlows(after, p.ah))
	if dump(got) != dump(ref) {
		t.Errorf("flows on %s differ from tcpdump's\n nta:\n%s\n tcpdump+gopacket:\n%s", p.ah, dump(got), dump(ref))
	}
	// The traffic we generated is in there, exactly.
	if c := ref[flowKey{"in", p.aIP, p.bIP, "8", "0", "icmp"}]; c.packets != 5 {
		t.Errorf("echo requests seen: %v, want 5", c.packets)
	}
	var udpPkts, udpBytes float64
	for k, c := range got {
		if k.proto == "udp" && k.dport == "9999" && k.dir == "in" {
			udpPkts += c.packets
			udpBytes += c.bytes
		}
	}
	if want := 10*(500+42) + 7*(1200+42); udpPkts != 17 || udpBytes != float64(want) {
		t.Errorf("udp: %v packets %v bytes, want 17 and %d", udpPkts, udpBytes, want)
	}
	var tcpPayloadSide float64
	for k, c := range got {
		if k.proto == "tcp" && k.dport == "8080" && k.dir == "in" {
			tcpPayloadSide += c.bytes
		}
	}
	if tcpPayloadSide < tcpBytes {
		t.Errorf("tcp client→server bytes %v < payload %d", tcpPayloadSide, tcpBytes)
	}

	lbl := map[string]string{"interface": p.ah}
	if d := after.One(t, "nta_capture_kernel_drops_total", lbl).Value; d != 0 {
		t.Errorf("kernel drops %v, want 0", d)
	}
	arpDelta := sumFamily(after, "nta_capture_ethertype_packets_total", map[string]string{"interface": p.ah, "ethertype": "0x0806"}) -
		sumFamily(before, "nta_capture_ethertype_packets_total", map[string]string{"interface": p.ah, "ethertype": "0x0806"})
	if arpDelta != float64(arp) {
		t.Errorf("ARP frames: nta %v, tcpdump %d", arpDelta, arp)
	}
	// Every frame the kernel passed reached the table, and the table's
	// flows + non-IP + undecodable account for every frame.
	kernel := after.One(t, "nta_capture_kernel_packets_total", lbl).Value
	input := after.One(t, "nta_flow_input_packets_total", lbl).Value
	flows := sumFamily(after, "nta_flow_packets_total", lbl)
	other := sumFamily(after, "nta_capture_ethertype_packets_total", lbl) + sumFamily(after, "nta_capture_decode_errors_total", lbl)
	if kernel != input || flows+other != input {
		t.Errorf("kernel packets %v, table input %v, flows %v + non-IP/undecodable %v", kernel, input, flows, other)
	}
	// ARP: the real binding and the conflicting claim.
	if len(after.All("nta_arp_bindings", map[string]string{"interface": p.ah, "ip": p.aIP, "mac": p.aMAC})) != 1 {
		t.Errorf("no ARP binding %s → %s on %s", p.aIP, p.aMAC, p.ah)
	}
	if c := sumFamily(after, "nta_arp_conflicts_total", map[string]string{"interface": p.ah, "ip": p.aIP}); c < 1 {
		t.Errorf("ARP conflicts for %s: %v, want ≥ 1", p.aIP, c)
	}

	// The interface vanishes: capture releases it, the exporter keeps serving.
	testenv.Run(t, "ip", "link", "del", p.ah)
	testenv.Eventually(t, "capture released "+p.ah, 20*time.Second, func() error {
		m := e.Scrape()
		for _, f := range []string{"nta_capture_kernel_packets_total", "nta_flow_bytes_total", "nta_flow_input_packets_total"} {
			if s := m.All(f, lbl); len(s) != 0 {
				return fmt.Errorf("%s still exported for %s", f, p.ah)
			}
		}
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "flows"}).Value; v != 1 {
			return fmt.Errorf("flows collector success %v", v)
		}
		return nil
	})
	if n := countLines(e.Logs.String(), "level=ERROR"); n != 0 {
		t.Errorf("error lines after an interface vanished:\n%s", e.Logs.String())
	}
}

// TestFlowsBudgetFloodAndExpiry floods 20000 distinct UDP flows through a
// veth captured with a budget of 1000 flows: the table stays within the
// budget, folded flows keep the totals exact, and after the idle timeout
// the flows leave the table and /metrics.
func TestFlowsBudgetFloodAndExpiry(t *testing.T) {
	testenv.RequireRoot(t)
	p := newNSPair(t, "nt-g", "10.79.0")
	const budget, n, payload = 1000, 20000, 100
	e := startCapturing(t, p.ah, fmt.Sprintf("--collector.flows.max-flows-per-interface=%d", budget), "--collector.flows.idle-timeout=4s")
	lbl := map[string]string{"interface": p.ah}
	// A black-hole neighbour: frames leave, nothing answers.
	testenv.Run(t, "ip", "-n", p.a, "neigh", "add", "10.79.0.99", "lladdr", "02:00:00:00:00:99", "dev", "eth0")
	heapBefore := e.Scrape().One(t, "go_memstats_heap_inuse_bytes", nil).Value
	floodUDP(t, p.a, "10.79.0.99", n, payload)
	time.Sleep(1500 * time.Millisecond)
	m := e.Scrape()
	if d := m.One(t, "nta_capture_kernel_drops_total", lbl).Value; d != 0 {
		t.Errorf("kernel drops %v during the flood", d)
	}
	if f := m.One(t, "nta_flow_table_flows", lbl).Value; f > budget {
		t.Errorf("table holds %v flows, budget %d", f, budget)
	}
	series := m.All("nta_flow_packets_total", lbl)
	if len(series) > budget+2 {
		t.Errorf("%d flow series on %s, budget %d (+ overflow)", len(series), p.ah, budget)
	}
	inMatch := map[string]string{"interface": p.ah, "direction": "in"}
	if pk, by := sumFamily(m, "nta_flow_packets_total", inMatch), sumFamily(m, "nta_flow_bytes_total", inMatch); pk != n || by != n*(payload+42) {
		t.Errorf("flood totals: %v packets %v bytes, want %d and %d", pk, by, n, n*(payload+42))
	}
	if len(m.All("nta_flow_packets_total", map[string]string{"interface": p.ah, "src": "overflow"})) == 0 {
		t.Errorf("no overflow series after %d flows with budget %d", n, budget)
	}
	if f := sumFamily(m, "nta_flow_folded_flows_total", lbl) + sumFamily(m, "nta_flow_evicted_flows_total", lbl); f < n-budget {
		t.Errorf("folded+evicted %v, want ≥ %d", f, n-budget)
	}
	heapPeak := m.One(t, "go_memstats_heap_inuse_bytes", nil).Value

	testenv.Eventually(t, "flows expired", 30*time.Second, func() error {
		m := e.Scrape()
		if f := m.One(t, "nta_flow_table_flows", lbl).Value; f != 0 {
			return fmt.Errorf("%v flows left", f)
		}
		for _, s := range m.All("nta_flow_packets_total", lbl) {
			if s.Labels["src"] != "overflow" {
				return fmt.Errorf("flow series left: %v", s.Labels)
			}
		}
		return nil
	})
	heapAfter := e.Scrape().One(t, "go_memstats_heap_inuse_bytes", nil).Value
	t.Logf("heap in use: before %.1f MiB, after flood %.1f MiB, after expiry %.1f MiB", heapBefore/(1<<20), heapPeak/(1<<20), heapAfter/(1<<20))
	if heapAfter > heapBefore+16<<20 {
		t.Errorf("heap did not come back: before %.0f, after expiry %.0f", heapBefore, heapAfter)
	}
}

// floodUDP sends n datagrams of payload bytes from namespace ns to ip on n
// distinct destination ports, paced to at most 100 kpps.
func floodUDP(t *testing.T, ns, ip string, n, payload int) {
	t.Helper()
	inNetns(t, ns, func() {
		c, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, payload)
		for i := 0; i < n; i++ {
			if _, err := c.WriteTo(buf, &net.UDPAddr{IP: net.ParseIP(ip), Port: 1024 + i%64000}); err != nil {
				t.Fatal(err)
			}
			if i%200 == 199 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	})
}

// TestFlowsMemoryReturnsAfterExpiry fills a table with 60000 flows and
// checks the exporter's heap comes back near where it was once they expire
// (Go maps never shrink; the table is rebuilt).
func TestFlowsMemoryReturnsAfterExpiry(t *testing.T) {
	testenv.RequireRoot(t)
	p := newNSPair(t, "nt-m", "10.80.0")
	const n = 60000
	e := startCapturing(t, p.ah, "--collector.flows.max-flows-per-interface=100000", "--collector.flows.max-flows=100000", "--collector.flows.idle-timeout=5s")
	lbl := map[string]string{"interface": p.ah}
	testenv.Run(t, "ip", "-n", p.a, "neigh", "add", "10.80.0.99", "lladdr", "02:00:00:00:00:99", "dev", "eth0")
	heap := func() float64 {
		// A scrape of 60000 flows allocates; measure the retained heap after a GC
		// cycle has had the chance to run (go_memstats_heap_inuse_bytes).
		return e.Scrape().One(t, "go_memstats_heap_inuse_bytes", nil).Value
	}
	before := heap()
	floodUDP(t, p.a, "10.80.0.99", n, 64)
	time.Sleep(1500 * time.Millisecond)
	if f := e.Scrape().One(t, "nta_flow_table_flows", lbl).Value; f < n*0.99 {
		t.Fatalf("table holds %v flows, want ~%d", f, n)
	}
	peak := heap()
	testenv.Eventually(t, "flows expired", 40*time.Second, func() error {
		if f := e.Scrape().One(t, "nta_flow_table_flows", lbl).Value; f != 0 {
			return fmt.Errorf("%v flows left", f)
		}
		return nil
	})
	// The table is rebuilt at expiry; the Go runtime returns the memory at
	// its next GC, which scrapes trigger and which runs at least every 2 min.
	var after float64
	begin := time.Now()
	testenv.Eventually(t, "heap back near its baseline", 150*time.Second, func() error {
		after = heap()
		if after > before+(peak-before)/3 {
			return fmt.Errorf("heap in use %.1f MiB (before %.1f, peak %.1f)", after/(1<<20), before/(1<<20), peak/(1<<20))
		}
		return nil
	})
	t.Logf("heap in use: before %.1f MiB, with %d flows %.1f MiB, %.0fs after expiry %.1f MiB", before/(1<<20), n, peak/(1<<20), time.Since(begin).Seconds(), after/(1<<20))
	if peak-before < 4<<20 {
		t.Fatalf("the flood did not grow the heap measurably (%.0f → %.0f): the test proves nothing", before, peak)
	}
}

// TestFlowsDockerNames: with the default roles the exporter captures on the
// host ends of container veths it learns from Docker, picks up a container
// started after it, and labels flows with container names.
func TestFlowsDockerNames(t *testing.T) {
	testenv.RequireRoot(t)
	testimage.RequireDocker(t)
	img := testimage.Ensure(t)
	netName, _ := testimage.CreateNetwork(t, "nt-fl")
	e := testenv.StartExporter(t, "--collector.flows", "--collector.flows.granularity=5tuple")
	// Started after the exporter: capture must pick them up without a restart.
	a := testimage.RunContainer(t, "nt-fla", "--network", netName, img)
	b := testimage.RunContainer(t, "nt-flb", "--network", netName, img)
	var bVeth string
	testenv.Eventually(t, "capture on the containers' veths", 30*time.Second, func() error {
		m := e.Scrape()
		ep := m.All("nta_docker_endpoint_info", map[string]string{"container": b, "network": netName})
		if len(ep) != 1 || ep[0].Labels["host_interface"] == "" {
			return fmt.Errorf("endpoint of %s not resolved", b)
		}
		bVeth = ep[0].Labels["host_interface"]
		if len(m.All("nta_capture_kernel_packets_total", map[string]string{"interface": bVeth})) != 1 {
			return fmt.Errorf("%s not captured", bVeth)
		}
		return nil
	})
	aIP := strings.TrimSpace(testenv.Run(t, "docker", "inspect", "-f", `{{(index .NetworkSettings.Networks "`+netName+`").IPAddress}}`, a))
	bIP := strings.TrimSpace(testenv.Run(t, "docker", "inspect", "-f", `{{(index .NetworkSettings.Networks "`+netName+`").IPAddress}}`, b))
	out := testenv.Run(t, "docker", "exec", a, "/app", "-send", bIP+":80", "-proto", "udp", "-bytes", "5000", "-chunk", "500")
	if !strings.Contains(out, "sent 5000 bytes") {
		t.Fatalf("sender: %s", out)
	}
	time.Sleep(1500 * time.Millisecond)
	m := e.Scrape()
	// On b's host veth the datagrams are transmitted towards b: direction out.
	match := map[string]string{"interface": bVeth, "direction": "out", "proto": "udp", "src": aIP, "dst": bIP, "dst_port": "80"}
	pk := m.One(t, "nta_flow_packets_total", match)
	by := m.One(t, "nta_flow_bytes_total", match)
	if pk.Value != 10 || by.Value != 10*(500+42) {
		t.Errorf("a→b udp on %s: %v packets %v bytes, want 10 and %d", bVeth, pk.Value, by.Value, 10*(500+42))
	}
	if pk.Labels["src_name"] != a || pk.Labels["dst_name"] != b {
		t.Errorf("flow names: src_name %q dst_name %q, want %q and %q", pk.Labels["src_name"], pk.Labels["dst_name"], a, b)
	}
	if d := m.One(t, "nta_capture_kernel_drops_total", map[string]string{"interface": bVeth}).Value; d != 0 {
		t.Errorf("kernel drops on %s: %v", bVeth, d)
	}
}
