package flowagg

import (
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

type decodeCase struct {
	name   string
	link   linkType
	frame  []byte
	kind   frameKind
	key    FlowKey // for kindFlow (Dir not compared)
	et     uint16
	reason Reason
}

// decodeCases builds one frame for every protocol the decoder knows, with
// gopacket/layers, and the key the decoder must find in it.
func decodeCases(tb testing.TB) []decodeCase {
	var cs []decodeCase
	add := func(name string, frame []byte, kind frameKind, key FlowKey, et uint16) {
		cs = append(cs, decodeCase{name: name, link: linkEthernet, frame: frame, kind: kind, key: key, et: et})
	}
	bad := func(name string, link linkType, frame []byte, reason Reason) {
		cs = append(cs, decodeCase{name: name, link: link, frame: frame, kind: kindError, reason: reason})
	}

	add("tcp4", tcp4Frame(tb, "10.0.0.1", "10.0.0.2", 40000, 80, 10), kindFlow,
		key4("10.0.0.1", "10.0.0.2", 40000, 80, 6, DirIn), etherTypeIPv4)
	padded := append(udp4Frame(tb, "10.0.0.1", "10.0.0.2", 5353, 53, 0), 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)
	add("udp4 with ethernet padding", padded, kindFlow, key4("10.0.0.1", "10.0.0.2", 5353, 53, 17, DirIn), etherTypeIPv4)

	ipI := ip4("10.0.0.1", "10.0.0.3", layers.IPProtocolICMPv4)
	add("icmp4 echo", serialize(tb, append(eth(layers.EthernetTypeIPv4), ipI,
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1}, payload(8))...),
		kindFlow, key4("10.0.0.1", "10.0.0.3", 8, 0, 1, DirIn), etherTypeIPv4)

	ipS := ip4("10.0.0.1", "10.0.0.4", layers.IPProtocolSCTP)
	add("sctp4", serialize(tb, append(eth(layers.EthernetTypeIPv4), ipS,
		&layers.SCTP{SrcPort: 3868, DstPort: 3869, VerificationTag: 1})...),
		kindFlow, key4("10.0.0.1", "10.0.0.4", 3868, 3869, 132, DirIn), etherTypeIPv4)

	ipG := ip4("10.0.0.1", "10.0.0.5", layers.IPProtocolGRE)
	add("gre4 has no ports", serialize(tb, append(eth(layers.EthernetTypeIPv4), ipG, payload(8))...),
		kindFlow, key4("10.0.0.1", "10.0.0.5", 0, 0, 47, DirIn), etherTypeIPv4)

	for _, v := range []struct {
		name  string
		tpids []layers.EthernetType
	}{
		{"802.1q", []layers.EthernetType{layers.EthernetTypeDot1Q}},
		{"qinq 802.1ad", []layers.EthernetType{layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q}},
		{"qinq 0x9100", []layers.EthernetType{0x9100, layers.EthernetTypeDot1Q}},
		{"three tags", []layers.EthernetType{layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q, layers.EthernetTypeDot1Q}},
	} {
		ip := ip4("192.168.1.1", "192.168.1.2", layers.IPProtocolUDP)
		add(v.name, serialize(tb, append(eth(layers.EthernetTypeIPv4, v.tpids...), ip, udp(1000, 2000, ip), payload(4))...),
			kindFlow, key4("192.168.1.1", "192.168.1.2", 1000, 2000, 17, DirIn), etherTypeIPv4)
	}

	i6 := ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolTCP)
	add("tcp6", serialize(tb, append(eth(layers.EthernetTypeIPv6), i6, tcp(50000, 443, i6), payload(3))...),
		kindFlow, key6("2001:db8::1", "2001:db8::2", 50000, 443, 6, DirIn), etherTypeIPv6)

	// hop-by-hop, routing and destination options before UDP
	i6x := ip6("2001:db8::1", "2001:db8::3", layers.IPProtocolIPv6HopByHop)
	hbh := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{{OptionType: 0x1e, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
	hbh.NextHeader = layers.IPProtocolIPv6Routing
	rt := &layers.IPv6Routing{RoutingType: 4, Reserved: make([]byte, 4), Data: make([]byte, 16)}
	rt.NextHeader = layers.IPProtocolIPv6Destination
	dst := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 0x1e, OptionLength: 4, OptionData: []byte{1, 2, 3, 4}}}}
	dst.NextHeader = layers.IPProtocolUDP
	add("udp6 behind hop-by-hop, routing, dstopts", serialize(tb, append(eth(layers.EthernetTypeIPv6), i6x, hbh, rt, dst, udp(546, 547, i6x), payload(2))...),
		kindFlow, key6("2001:db8::1", "2001:db8::3", 546, 547, 17, DirIn), etherTypeIPv6)

	i6e := ip6("fe80::1", "ff02::1", layers.IPProtocolICMPv6)
	ic6 := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
	_ = ic6.SetNetworkLayerForChecksum(i6e)
	add("icmpv6 echo", serialize(tb, append(eth(layers.EthernetTypeIPv6), i6e, ic6, &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1})...),
		kindFlow, key6("fe80::1", "ff02::1", 128, 0, 58, DirIn), etherTypeIPv6)

	add("arp", arpFrame(tb, layers.ARPReply, macA, "10.0.0.1"), kindARP, FlowKey{}, etherTypeARP)
	add("lldp", serialize(tb, append(eth(layers.EthernetTypeLinkLayerDiscovery), payload(30))...), kindOther, FlowKey{}, 0x88cc)
	llc := serialize(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeLLC, Length: 7},
		&layers.LLC{DSAP: 0x42, SSAP: 0x42, Control: 3}, payload(4))
	add("802.3 llc (stp)", llc, kindOther, FlowKey{}, etherType8023)

	// Linux cooked v1 and v2, raw IP: the link headers of `tcpdump -i any`.
	ipPkt := tcp4Frame(tb, "10.1.0.1", "10.1.0.2", 1234, 22, 0)[14:]
	sll := make([]byte, 16, 16+len(ipPkt))
	binary.BigEndian.PutUint16(sll[0:2], 4) // PACKET_OUTGOING
	binary.BigEndian.PutUint16(sll[2:4], 1)
	binary.BigEndian.PutUint16(sll[14:16], etherTypeIPv4)
	cs = append(cs, decodeCase{name: "sll", link: linkSLL, frame: append(sll, ipPkt...), kind: kindFlow,
		key: key4("10.1.0.1", "10.1.0.2", 1234, 22, 6, DirOut), et: etherTypeIPv4})
	sll2 := make([]byte, 20, 20+len(ipPkt))
	binary.BigEndian.PutUint16(sll2[0:2], etherTypeIPv4)
	cs = append(cs, decodeCase{name: "sll2", link: linkSLL2, frame: append(sll2, ipPkt...), kind: kindFlow,
		key: key4("10.1.0.1", "10.1.0.2", 1234, 22, 6, DirIn), et: etherTypeIPv4})
	cs = append(cs, decodeCase{name: "raw ipv4", link: linkRaw, frame: ipPkt, kind: kindFlow,
		key: key4("10.1.0.1", "10.1.0.2", 1234, 22, 6, DirIn), et: etherTypeIPv4})
	i6r := ip6("2001:db8::a", "2001:db8::b", layers.IPProtocolUDP)
	cs = append(cs, decodeCase{name: "raw ipv6", link: linkRaw, frame: serialize(tb, i6r, udp(1, 2, i6r)), kind: kindFlow,
		key: key6("2001:db8::a", "2001:db8::b", 1, 2, 17, DirIn), et: etherTypeIPv6})

	// malformed
	tcpf := tcp4Frame(tb, "10.0.0.1", "10.0.0.2", 1, 2, 0)
	mut := func(f []byte, fn func(b []byte)) []byte { c := append([]byte(nil), f...); fn(c); return c }
	bad("ipv4 ihl 4", linkEthernet, mut(tcpf, func(b []byte) { b[14] = 0x44 }), ReasonIPv4BadHeader)
	bad("ipv4 version 5", linkEthernet, mut(tcpf, func(b []byte) { b[14] = 0x55 }), ReasonIPv4BadHeader)
	bad("ipv4 total length < ihl", linkEthernet, mut(tcpf, func(b []byte) { binary.BigEndian.PutUint16(b[16:], 12) }), ReasonIPv4BadHeader)
	bad("ipv4 total length cuts tcp", linkEthernet, mut(tcpf, func(b []byte) { binary.BigEndian.PutUint16(b[16:], 22) }), ReasonL4Truncated)
	bad("ipv4 ihl beyond frame", linkEthernet, mut(tcpf, func(b []byte) { b[14] = 0x4f })[:14+40], ReasonIPv4Truncated)
	tcp6f := serialize(tb, append(eth(layers.EthernetTypeIPv6), i6, tcp(1, 2, i6))...)
	bad("ipv6 version 4", linkEthernet, mut(tcp6f, func(b []byte) { b[14] = 0x40 }), ReasonIPv6BadHeader)
	bad("raw version 5", linkRaw, []byte{0x50, 0, 0, 0}, ReasonBadIPVersion)
	nine := make([]layers.EthernetType, 9)
	for i := range nine {
		nine[i] = layers.EthernetTypeDot1Q
	}
	ipv := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	bad("nine vlan tags", linkEthernet, serialize(tb, append(eth(layers.EthernetTypeIPv4, nine...), ipv, udp(1, 2, ipv))...), ReasonVLANTooDeep)
	// 17 destination-options headers in a row
	ls := append(eth(layers.EthernetTypeIPv6), ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6Destination))
	for i := 0; i < 17; i++ {
		d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 0x1e, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
		d.NextHeader = layers.IPProtocolIPv6Destination
		if i == 16 {
			d.NextHeader = layers.IPProtocolNoNextHeader
		}
		ls = append(ls, d)
	}
	bad("17 ipv6 extension headers", linkEthernet, serialize(tb, ls...), ReasonIPv6ExtTooMany)
	arpf := arpFrame(tb, layers.ARPRequest, macA, "10.0.0.1")
	bad("arp cut at 20 bytes", linkEthernet, arpf[:14+20], ReasonARPTruncated)
	return cs
}

func TestDecodeProtocols(t *testing.T) {
	for _, c := range decodeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			var d decoder
			var r result
			kind := d.decode(c.link, c.frame, t0.UnixNano(), &r)
			if kind != c.kind {
				t.Fatalf("kind %d (reason %s), want %d", kind, r.reason, c.kind)
			}
			switch kind {
			case kindFlow:
				got := r.key
				want := c.key
				if r.outgoing != (want.Dir == DirOut) {
					t.Errorf("outgoing %v, want %v", r.outgoing, want.Dir == DirOut)
				}
				got.Dir, want.Dir = 0, 0
				if got != want {
					t.Errorf("key\n got %s %+v\nwant %s %+v", &got, got, &want, want)
				}
			case kindError:
				if r.reason != c.reason {
					t.Errorf("reason %s, want %s", r.reason, c.reason)
				}
			}
			if kind != kindError && r.etherType != c.et {
				t.Errorf("ethertype %#04x, want %#04x", r.etherType, c.et)
			}
			if c.link == linkEthernet && kind == kindFlow {
				crossCheck(t, c.frame, r.key)
			}
		})
	}
}

// crossCheck compares the key with gopacket's own reading of the frame.
func crossCheck(t *testing.T, frame []byte, k FlowKey) {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	nl := p.NetworkLayer()
	if nl == nil {
		t.Logf("gopacket finds no network layer (skipped): %v", p)
		return
	}
	src, dst := nl.NetworkFlow().Endpoints()
	if src.String() != k.SrcAddr().String() || dst.String() != k.DstAddr().String() {
		t.Errorf("gopacket reads %s -> %s, decoder %s -> %s", src, dst, k.SrcAddr(), k.DstAddr())
	}
	if tl := p.TransportLayer(); tl != nil && hasPorts(k.Proto) {
		sp, dp := tl.TransportFlow().Endpoints()
		if sp.String() != k.SrcPortLabel() || dp.String() != k.DstPortLabel() {
			t.Errorf("gopacket reads ports %s -> %s, decoder %d -> %d", sp, dp, k.SrcPort, k.DstPort)
		}
	}
}

func TestDecodeIPv4Fragments(t *testing.T) {
	first := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	first.Flags = layers.IPv4MoreFragments
	first.Id = 4242
	f1 := serialize(t, append(eth(layers.EthernetTypeIPv4), first, udp(5000, 6000, first), payload(1472))...)
	later := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	later.Id = 4242
	later.FragOffset = 185
	f2 := serialize(t, append(eth(layers.EthernetTypeIPv4), later, payload(500))...)
	orphan := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	orphan.Id = 999
	orphan.FragOffset = 185
	f3 := serialize(t, append(eth(layers.EthernetTypeIPv4), orphan, payload(500))...)

	_, tb := testTable(Config{})
	tb.Add(f1, len(f1), DirIn, t0)
	tb.Add(f2, len(f2), DirIn, t0)
	tb.Add(f3, len(f3), DirIn, t0)
	s := tb.PublishSnapshot()
	checkSums(t, s)
	f, ok := flowOf(s, key4("10.0.0.1", "10.0.0.2", 5000, 6000, 17, DirIn))
	if !ok || f.Packets != 2 || f.Bytes != uint64(len(f1)+len(f2)) {
		t.Fatalf("first and later fragment: flow %+v found=%v, want 2 packets %d bytes", f, ok, len(f1)+len(f2))
	}
	if f, ok := flowOf(s, key4("10.0.0.1", "10.0.0.2", 0, 0, 17, DirIn)); !ok || f.Packets != 1 {
		t.Fatalf("orphan later fragment: want a port-0 flow with 1 packet, got %+v found=%v", f, ok)
	}
}

func TestDecodeIPv6Fragments(t *testing.T) {
	mk := func(off uint16, more bool, id uint32, withUDP bool) []byte {
		ip := ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6Fragment)
		fr := &layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: off, MoreFragments: more, Identification: id}
		ls := append(eth(layers.EthernetTypeIPv6), ip, fr)
		if withUDP {
			ls = append(ls, udp(7000, 8000, ip))
		}
		return serialize(t, append(ls, payload(64))...)
	}
	_, tb := testTable(Config{})
	for _, f := range [][]byte{mk(0, true, 77, true), mk(9, false, 77, false), mk(9, false, 78, false)} {
		tb.Add(f, len(f), DirOut, t0)
	}
	s := tb.PublishSnapshot()
	checkSums(t, s)
	if f, ok := flowOf(s, key6("2001:db8::1", "2001:db8::2", 7000, 8000, 17, DirOut)); !ok || f.Packets != 2 {
		t.Fatalf("ipv6 fragments of datagram 77: got %+v found=%v, want 2 packets", f, ok)
	}
	if f, ok := flowOf(s, key6("2001:db8::1", "2001:db8::2", 0, 0, 17, DirOut)); !ok || f.Packets != 1 {
		t.Fatalf("orphan ipv6 fragment: got %+v found=%v, want a port-0 flow", f, ok)
	}
}

// TestDecodeTruncatedAtEveryLength cuts every test frame at every length:
// nothing panics, every frame is counted exactly once, and a frame cut
// inside the headers the decoder needs is a decode error.
func TestDecodeTruncatedAtEveryLength(t *testing.T) {
	for _, c := range decodeCases(t) {
		if c.kind == kindError {
			continue
		}
		_, tb := testTable(Config{})
		var want [numReasons]uint64
		errs := 0
		for n := 0; n < len(c.frame); n++ {
			var d decoder
			var r result
			kind := d.decode(c.link, c.frame[:n], t0.UnixNano(), &r)
			if kind == kindError {
				errs++
				want[r.reason]++
				if r.reason == ReasonNone {
					t.Fatalf("%s cut at %d: error without reason", c.name, n)
				}
			}
			if c.link == linkEthernet {
				tb.Add(c.frame[:n], n, DirIn, t0)
			}
			if c.link == linkEthernet && n < 14 && kind != kindError {
				t.Fatalf("%s cut at %d: kind %d, want error", c.name, n, kind)
			}
		}
		if errs == 0 {
			t.Errorf("%s: no cut length was an error", c.name)
		}
		if c.link != linkEthernet {
			continue
		}
		s := tb.PublishSnapshot()
		checkSums(t, s)
		if s.Total.Packets != uint64(len(c.frame)) || s.DecodeErrors != want {
			t.Errorf("%s: total %d errors %v, want %d and %v", c.name, s.Total.Packets, s.DecodeErrors, len(c.frame), want)
		}
	}
}

func TestDecodeTruncationReasons(t *testing.T) {
	f := tcp4Frame(t, "10.0.0.1", "10.0.0.2", 1, 2, 0)
	i6 := ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6HopByHop)
	hbh := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{{OptionType: 0x1e, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
	hbh.NextHeader = layers.IPProtocolTCP
	f6 := serialize(t, append(eth(layers.EthernetTypeIPv6), i6, hbh, tcp(1, 2, i6))...)
	v := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP)
	fv := serialize(t, append(eth(layers.EthernetTypeIPv4, layers.EthernetTypeDot1Q), v, tcp(1, 2, v))...)
	for _, c := range []struct {
		frame []byte
		n     int
		want  Reason
	}{
		{f, 13, ReasonLinkTruncated},
		{f, 14 + 19, ReasonIPv4Truncated},
		{f, 14 + 20 + 3, ReasonL4Truncated},
		{fv, 14 + 3, ReasonVLANTruncated},
		{f6, 14 + 39, ReasonIPv6Truncated},
		{f6, 14 + 40 + 1, ReasonIPv6ExtTruncated},
		{f6, 14 + 40 + 7, ReasonIPv6ExtTruncated},
		{f6, 14 + 40 + 8 + 3, ReasonL4Truncated},
	} {
		var d decoder
		var r result
		if k := d.decode(linkEthernet, c.frame[:c.n], 0, &r); k != kindError || r.reason != c.want {
			t.Errorf("cut at %d: kind %d reason %s, want %s", c.n, k, r.reason, c.want)
		}
	}
	// with the ports present the frame is a flow even if the rest of TCP is cut
	var d decoder
	var r result
	if k := d.decode(linkEthernet, f[:14+20+4], 0, &r); k != kindFlow || r.key.DstPort != 2 {
		t.Errorf("ports present: kind %d key %+v", k, r.key)
	}
}
