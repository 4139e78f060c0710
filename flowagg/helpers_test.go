package flowagg

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Frames for the tests are built with gopacket/layers, independently of the
// decoder under test.

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	macC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0c}
	t0   = time.Now() // flows must be fresh for PublishSnapshot (wall clock)
)

func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// eth returns an Ethernet header for the given EtherType, with VLAN tags
// (outermost first, each tag given as its TPID) pushed in front.
func eth(et layers.EthernetType, tpids ...layers.EthernetType) []gopacket.SerializableLayer {
	if len(tpids) == 0 {
		return []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}}
	}
	ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: tpids[0]}}
	for i := range tpids {
		next := et
		if i+1 < len(tpids) {
			next = tpids[i+1]
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: uint16(100 + i), Type: next})
	}
	return ls
}

func ip4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, Id: 0x1234,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func ip6(src, dst string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

func tcp(sport, dport uint16, nl gopacket.NetworkLayer) *layers.TCP {
	t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 1000}
	_ = t.SetNetworkLayerForChecksum(nl)
	return t
}

func udp(sport, dport uint16, nl gopacket.NetworkLayer) *layers.UDP {
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = u.SetNetworkLayerForChecksum(nl)
	return u
}

func payload(n int) gopacket.Payload { return make(gopacket.Payload, n) }

// tcp4Frame is a TCP/IPv4 Ethernet frame.
func tcp4Frame(tb testing.TB, src, dst string, sport, dport uint16, n int) []byte {
	ip := ip4(src, dst, layers.IPProtocolTCP)
	return serialize(tb, append(eth(layers.EthernetTypeIPv4), ip, tcp(sport, dport, ip), payload(n))...)
}

// udp4Frame is a UDP/IPv4 Ethernet frame.
func udp4Frame(tb testing.TB, src, dst string, sport, dport uint16, n int) []byte {
	ip := ip4(src, dst, layers.IPProtocolUDP)
	return serialize(tb, append(eth(layers.EthernetTypeIPv4), ip, udp(sport, dport, ip), payload(n))...)
}

// arpFrame is an ARP packet in which ip claims to be at mac.
func arpFrame(tb testing.TB, op uint16, mac net.HardwareAddr, ip string) []byte {
	return serialize(tb, append(eth(layers.EthernetTypeARP),
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
			SourceHwAddress: mac, SourceProtAddress: net.ParseIP(ip).To4(),
			DstHwAddress: make([]byte, 6), DstProtAddress: net.ParseIP("10.0.0.254").To4()})...)
}

func addr16(s string) [16]byte {
	a := netip.MustParseAddr(s)
	if a.Is4() {
		var b [16]byte
		v := a.As4()
		copy(b[:], v[:])
		return b
	}
	return a.As16()
}

// key4 is the FlowKey the decoder should produce for an IPv4 flow.
func key4(src, dst string, sport, dport uint16, proto uint8, dir Direction) FlowKey {
	return FlowKey{Src: addr16(src), Dst: addr16(dst), SrcPort: sport, DstPort: dport,
		Proto: proto, Dir: dir, Family: 4}
}

func key6(src, dst string, sport, dport uint16, proto uint8, dir Direction) FlowKey {
	return FlowKey{Src: addr16(src), Dst: addr16(dst), SrcPort: sport, DstPort: dport,
		Proto: proto, Dir: dir, Family: 6}
}

// testTable returns a table of a fresh aggregator.
func testTable(cfg Config) (*Aggregator, *IfaceTable) {
	a := NewAggregator(cfg)
	return a, a.Interface("eth0")
}

// flowOf returns the flow with key k from a snapshot.
func flowOf(s *TableSnapshot, k FlowKey) (Flow, bool) {
	for _, f := range s.Flows {
		if f.Key == k {
			return f, true
		}
	}
	return Flow{}, false
}

// checkSums asserts the accounting invariants of a snapshot.
func checkSums(tb testing.TB, s *TableSnapshot) {
	tb.Helper()
	ip := s.FlowSum()
	all := ip
	all.addCounter(s.NonIP)
	all.addCounter(s.Errors)
	if all != s.Total {
		tb.Fatalf("flows %+v + non-IP %+v + errors %+v = %+v, want total %+v", ip, s.NonIP, s.Errors, all, s.Total)
	}
	var reasons uint64
	for _, n := range s.DecodeErrors {
		reasons += n
	}
	if reasons != s.Errors.Packets {
		tb.Fatalf("decode errors by reason sum to %d, want %d", reasons, s.Errors.Packets)
	}
	var ets uint64
	for _, e := range s.EtherTypes {
		ets += e.Packets
	}
	if ets != s.NonIP.Packets {
		tb.Fatalf("ethertype counters sum to %d, want %d", ets, s.NonIP.Packets)
	}
}
