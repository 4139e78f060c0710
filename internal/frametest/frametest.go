// Package frametest builds frames for the tests of the flow packages with
// gopacket/layers, independently of the decoder under test.
package frametest

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// Source MACs of test frames.
var (
	MACA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	MACB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	MACC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0c}
)

// Serialize encodes layers into one frame, lengths and checksums computed.
func Serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// Eth returns an Ethernet header for the given EtherType, with VLAN tags
// (outermost first, each tag given as its TPID) pushed in front.
func Eth(et layers.EthernetType, tpids ...layers.EthernetType) []gopacket.SerializableLayer {
	if len(tpids) == 0 {
		return []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: MACA, DstMAC: MACB, EthernetType: et}}
	}
	ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: MACA, DstMAC: MACB, EthernetType: tpids[0]}}
	for i := range tpids {
		next := et
		if i+1 < len(tpids) {
			next = tpids[i+1]
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: uint16(100 + i), Type: next})
	}
	return ls
}

// IP4 returns an IPv4 header (IHL 5, TTL 64, id 0x1234).
func IP4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, Id: 0x1234,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

// IP6 returns an IPv6 header.
func IP6(src, dst string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

// TCP returns a SYN segment header with checksums over nl.
func TCP(sport, dport uint16, nl gopacket.NetworkLayer) *layers.TCP {
	t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 1000}
	_ = t.SetNetworkLayerForChecksum(nl)
	return t
}

// UDP returns a datagram header with checksums over nl.
func UDP(sport, dport uint16, nl gopacket.NetworkLayer) *layers.UDP {
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = u.SetNetworkLayerForChecksum(nl)
	return u
}

// Payload returns n zero bytes of payload.
func Payload(n int) gopacket.Payload { return make(gopacket.Payload, n) }

// TCP4Frame is a TCP/IPv4 Ethernet frame.
func TCP4Frame(tb testing.TB, src, dst string, sport, dport uint16, n int) []byte {
	ip := IP4(src, dst, layers.IPProtocolTCP)
	return Serialize(tb, append(Eth(layers.EthernetTypeIPv4), ip, TCP(sport, dport, ip), Payload(n))...)
}

// UDP4Frame is a UDP/IPv4 Ethernet frame.
func UDP4Frame(tb testing.TB, src, dst string, sport, dport uint16, n int) []byte {
	ip := IP4(src, dst, layers.IPProtocolUDP)
	return Serialize(tb, append(Eth(layers.EthernetTypeIPv4), ip, UDP(sport, dport, ip), Payload(n))...)
}

// ARPFrame is an ARP packet in which ip claims to be at mac.
func ARPFrame(tb testing.TB, op uint16, mac net.HardwareAddr, ip string) []byte {
	return Serialize(tb, append(Eth(layers.EthernetTypeARP),
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
			SourceHwAddress: mac, SourceProtAddress: net.ParseIP(ip).To4(),
			DstHwAddress: make([]byte, 6), DstProtAddress: net.ParseIP("10.0.0.254").To4()})...)
}

// Addr16 returns an address in FlowKey form (IPv4 in the first 4 bytes).
func Addr16(s string) [16]byte {
	a := netip.MustParseAddr(s)
	if a.Is4() {
		var b [16]byte
		v := a.As4()
		copy(b[:], v[:])
		return b
	}
	return a.As16()
}

// Key4 is the FlowKey the decoder should produce for an IPv4 flow.
func Key4(src, dst string, sport, dport uint16, proto uint8, dir decoder.Direction) decoder.FlowKey {
	return decoder.FlowKey{Src: Addr16(src), Dst: Addr16(dst), SrcPort: sport, DstPort: dport,
		Proto: proto, Dir: dir, Family: 4}
}

// Key6 is the FlowKey the decoder should produce for an IPv6 flow.
func Key6(src, dst string, sport, dport uint16, proto uint8, dir decoder.Direction) decoder.FlowKey {
	return decoder.FlowKey{Src: Addr16(src), Dst: Addr16(dst), SrcPort: sport, DstPort: dport,
		Proto: proto, Dir: dir, Family: 6}
}

// Gen builds TCP/IPv4 frames by patching addresses and ports into one
// gopacket-built template (checksums are irrelevant to the decoder).
type Gen struct{ tmpl []byte }

// NewGen returns a generator of frames with n bytes of payload.
func NewGen(tb testing.TB, n int) *Gen {
	return &Gen{tmpl: TCP4Frame(tb, "10.0.0.1", "10.0.0.2", 1, 2, n)}
}

// Len is the length of the generated frames.
func (g *Gen) Len() int { return len(g.tmpl) }

// Frame writes the 5-tuple into buf (reused, len(tmpl)) and returns it.
func (g *Gen) Frame(buf []byte, src, dst uint32, sport, dport uint16) []byte {
	buf = append(buf[:0], g.tmpl...)
	binary.BigEndian.PutUint32(buf[26:30], src)
	binary.BigEndian.PutUint32(buf[30:34], dst)
	binary.BigEndian.PutUint16(buf[34:36], sport)
	binary.BigEndian.PutUint16(buf[36:38], dport)
	return buf
}

// Arena returns n distinct 64-byte TCP/IPv4 frames (distinct 5-tuples)
// stored back to back; the flow of frame i is i.
func Arena(tb testing.TB, n int) [][]byte {
	g := NewGen(tb, 0)
	size := g.Len()
	arena := make([]byte, n*size)
	frames := make([][]byte, n)
	for i := range n {
		buf := arena[i*size : i*size : (i+1)*size]
		frames[i] = g.Frame(buf, 0x0a000000|uint32(i>>8), 0xc0a80000|uint32(i&0xff), 40000+uint16(i%20000), 443)
	}
	return frames
}
