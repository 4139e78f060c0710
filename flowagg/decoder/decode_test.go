package decoder_test

import (
	"encoding/binary"
	"testing"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
	"github.com/tangfeixiong/nta/internal/frametest"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

type decodeCase struct {
	name   string
	link   decoder.LinkType
	frame  []byte
	kind   decoder.Kind
	key    decoder.FlowKey // for decoder.KindFlow (Dir not compared)
	et     uint16
	reason decoder.Reason
}

// decodeCases builds one frame for every protocol the decoder knows, with
// gopacket/layers, and the key the decoder must find in it.
func decodeCases(tb testing.TB) []decodeCase {
	var cs []decodeCase
	add := func(name string, frame []byte, kind decoder.Kind, key decoder.FlowKey, et uint16) {
		cs = append(cs, decodeCase{name: name, link: decoder.LinkEthernet, frame: frame, kind: kind, key: key, et: et})
	}
	bad := func(name string, link decoder.LinkType, frame []byte, reason decoder.Reason) {
		cs = append(cs, decodeCase{name: name, link: link, frame: frame, kind: decoder.KindError, reason: reason})
	}

	add("tcp4", frametest.TCP4Frame(tb, "10.0.0.1", "10.0.0.2", 40000, 80, 10), decoder.KindFlow,
		frametest.Key4("10.0.0.1", "10.0.0.2", 40000, 80, 6, decoder.DirIn), etherTypeIPv4)
	padded := append(frametest.UDP4Frame(tb, "10.0.0.1", "10.0.0.2", 5353, 53, 0), 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)
	add("udp4 with ethernet padding", padded, decoder.KindFlow, frametest.Key4("10.0.0.1", "10.0.0.2", 5353, 53, 17, decoder.DirIn), etherTypeIPv4)

	ipI := frametest.IP4("10.0.0.1", "10.0.0.3", layers.IPProtocolICMPv4)
	add("icmp4 echo", frametest.Serialize(tb, append(frametest.Eth(layers.EthernetTypeIPv4), ipI,
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1}, frametest.Payload(8))...),
		decoder.KindFlow, frametest.Key4("10.0.0.1", "10.0.0.3", 8, 0, 1, decoder.DirIn), etherTypeIPv4)

	ipS := frametest.IP4("10.0.0.1", "10.0.0.4", layers.IPProtocolSCTP)
	add("sctp4", frametest.Serialize(tb, append(frametest.Eth(layers.EthernetTypeIPv4), ipS,
		&layers.SCTP{SrcPort: 3868, DstPort: 3869, VerificationTag: 1})...),
		decoder.KindFlow, frametest.Key4("10.0.0.1", "10.0.0.4", 3868, 3869, 132, decoder.DirIn), etherTypeIPv4)

	ipG := frametest.IP4("10.0.0.1", "10.0.0.5", layers.IPProtocolGRE)
	add("gre4 has no ports", frametest.Serialize(tb, append(frametest.Eth(layers.EthernetTypeIPv4), ipG, frametest.Payload(8))...),
		decoder.KindFlow, frametest.Key4("10.0.0.1", "10.0.0.5", 0, 0, 47, decoder.DirIn), etherTypeIPv4)

	for _, v := range []struct {
		name  string
		tpids []layers.EthernetType
	}{
		{"802.1q", []layers.EthernetType{layers.EthernetTypeDot1Q}},
		{"qinq 802.1ad", []layers.EthernetType{layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q}},
		{"qinq 0x9100", []layers.EthernetType{0x9100, layers.EthernetTypeDot1Q}},
		{"three tags", []layers.EthernetType{layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q, layers.EthernetTypeDot1Q}},
	} {
		ip := frametest.IP4("192.168.1.1", "192.168.1.2", layers.IPProtocolUDP)
		add(v.name, frametest.Serialize(tb, append(frametest.Eth(layers.EthernetTypeIPv4, v.tpids...), ip, frametest.UDP(1000, 2000, ip), frametest.Payload(4))...),
			decoder.KindFlow, frametest.Key4("192.168.1.1", "192.168.1.2", 1000, 2000, 17, decoder.DirIn), etherTypeIPv4)
	}

	i6 := frametest.IP6("2001:db8::1", "2001:db8::2", layers.IPProtocolTCP)
	add("tcp6", frametest.Serialize(tb, append(frametest.Eth(layers.EthernetTypeIPv6), i6, frametest.TCP(50000, 443, i6), frametest.Payload(3))...),
		decoder.KindFlow, frametest.Key6("2001:db8::1", "2001:db8::2", 50000, 443, 6, decoder.DirIn), etherTypeIPv6)

	// hop-by-hop, routing and destination options before UDP
	i6x := frametest.IP6("2001:db8::1", "2001:db8::3", layers.IPProtocolIPv6HopByHop)
	hbh := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{{OptionType: 0x1e, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
	hbh.NextHeader = layers.IPProtocolIPv6Routing
	rt := &layers.IPv6Routing{RoutingType: 4, Reserved: make([]byte, 4), Data: make([]byte, 16)}
	rt.NextHeader = layers.IPProtocolIPv6Destination
	dst := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 0x1e, OptionLength: 4, OptionData: []byte{1, 2, 3, 4}}}}
	dst.NextHeader = layers.IPProtocolUDP
	add("udp6 behind hop-by-hop, routing, dstopts", frametest.Serialize(tb, append(frametest.Eth(layers.EthernetTypeIPv6), i6x, hbh, rt, dst, frametest.UDP(546, 547, i6x), frametest.Payload(2))...),
		decoder.KindFlow, frametest.Key6("2001:db8::1", "2001:db8::3", 546, 547, 17, decoder.DirIn), etherTypeIPv6)

	i6e := frametest.IP6("fe80::1", "ff02::1", layers.IPProtocolICMPv6)
	ic6 := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
	_ = ic6.SetNetworkLayerForChecksum(i6e)
	add("icmpv6 echo", frametest.Serialize(tb, append(frametest.Eth(layers.EthernetTypeIPv6), i6e, ic6, &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1})...),
		decoder.KindFlow, frametest.Key6("fe80::1", "ff02::1", 128, 0, 58, decoder.DirIn), etherTypeIPv6)

	add("arp", frametest.ARPFrame(tb, layers.ARPReply, frametest.MACA, "10.0.0.1"), decoder.KindARP, decoder.FlowKey{}, etherTypeARP)
	add("lldp", frametest.Serialize(tb, append(frametest.Eth(layers.EthernetTypeLinkLayerDiscovery), frametest.Payload(30))...), decoder.KindOther, decoder.FlowKey{}, 0x88cc)
	llc := frametest.Serialize(tb, &layers.Ethernet{SrcMAC: frametest.MACA, DstMAC: frametest.MACB, EthernetType: layers.EthernetTypeLLC, Length: 7},
		&layers.LLC{DSAP: 0x42, SSAP: 0x42, Control: 3}, frametest.Payload(4))
	add("802.3 llc (stp)", llc, decoder.KindOther, decoder.FlowKey{}, decoder.EtherType8023)

	// Linux cooked v1 and v2, raw IP: the link headers of `tcpdump -i any`.
	ipPkt := frametest.TCP4Frame(tb, "10.1.0.1", "10.1.0.2", 1234, 22, 0)[14:]
	sll := make([]byte, 16, 16+len(ipPkt))
	binary.BigEndian.PutUint16(sll[0:2], 4) // PACKET_OUTGOING
	binary.BigEndian.PutUint16(sll[2:4], 1)
	binary.BigEndian.PutUint16(sll[14:16], etherTypeIPv4)
	cs = append(cs, decodeCase{name: "sll", link: decoder.LinkSLL, frame: append(sll, ipPkt...), kind: decoder.KindFlow,
		key: frametest.Key4("10.1.0.1", "10.1.0.2", 1234, 22, 6, decoder.DirOut), et: etherTypeIPv4})
	sll2 := make([]byte, 20, 20+len(ipPkt))
	binary.BigEndian.PutUint16(sll2[0:2], etherTypeIPv4)
	cs = append(cs, decodeCase{name: "sll2", link: decoder.LinkSLL2, frame: append(sll2, ipPkt...), kind: decoder.KindFlow,
		key: frametest.Key4("10.1.0.1", "10.1.0.2", 1234, 22, 6, decoder.DirIn), et: etherTypeIPv4})
	cs = append(cs, decodeCase{name: "raw ipv4", link: decoder.LinkRaw, frame: ipPkt, kind: decoder.KindFlow,
		key: frametest.Key4("10.1.0.1", "10.1.0.2", 1234, 22, 6, decoder.DirIn), et: etherTypeIPv4})
	i6r := frametest.IP6("2001:db8::a", "2001:db8::b", layers.IPProtocolUDP)
	cs = append(cs, decodeCase{name: "raw ipv6", link: decoder.LinkRaw, frame: frametest.Serialize(tb, i6r, frametest.UDP(1, 2, i6r)), kind: decoder.KindFlow,
		key: frametest.Key6("2001:db8::a", "2001:db8::b", 1, 2, 17, decoder.DirIn), et: etherTypeIPv6})

	// malformed
	tcpf := frametest.TCP4Frame(tb, "10.0.0.1", "10.0.0.2", 1, 2, 0)
	mut := func(f []byte, fn func(b []byte)) []byte { c := append([]byte(nil), f...); fn(c); return c }
	bad("ipv4 ihl 4", decoder.LinkEthernet, mut(tcpf, func(b []byte) { b[14] = 0x44 }), decoder.ReasonIPv4BadHeader)
	bad("ipv4 version 5", decoder.LinkEthernet, mut(tcpf, func(b []byte) { b[14] = 0x55 }), decoder.ReasonIPv4BadHeader)
	bad("ipv4 total length < ihl", decoder.LinkEthernet, mut(tcpf, func(b []byte) { binary.BigEndian.PutUint16(b[16:], 12) }), decoder.ReasonIPv4BadHeader)
	bad("ipv4 total length cuts tcp", decoder.LinkEthernet, mut(tcpf, func(b []byte) { binary.BigEndian.PutUint16(b[16:], 22) }), decoder.ReasonL4Truncated)
	bad("ipv4 ihl beyond frame", decoder.LinkEthernet, mut(tcpf, func(b []byte) { b[14] = 0x4f })[:14+40], decoder.ReasonIPv4Truncated)
	tcp6f := frametest.Serialize(tb, append(frametest.Eth(layers.EthernetTypeIPv6), i6, frametest.TCP(1, 2, i6))...)
	bad("ipv6 version 4", decoder.LinkEthernet, mut(tcp6f, func(b []byte) { b[14] = 0x40 }), decoder.ReasonIPv6BadHeader)
	bad("raw version 5", decoder.LinkRaw, []byte{0x50, 0, 0, 0}, decoder.ReasonBadIPVersion)
	nine := make([]layers.EthernetType, 9)
	for i := range nine {
		nine[i] = layers.EthernetTypeDot1Q
	}
	ipv := frametest.IP4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	bad("nine vlan tags", decoder.LinkEthernet, frametest.Serialize(tb, append(frametest.Eth(layers.EthernetTypeIPv4, nine...), ipv, frametest.UDP(1, 2, ipv))...), decoder.ReasonVLANTooDeep)
	// 17 destination-options headers in a row
	ls := append(frametest.Eth(layers.EthernetTypeIPv6), frametest.IP6("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6Destination))
	for i := 0; i < 17; i++ {
		d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 0x1e, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
		d.NextHeader = layers.IPProtocolIPv6Destination
		if i == 16 {
			d.NextHeader = layers.IPProtocolNoNextHeader
		}
		ls = append(ls, d)
	}
	bad("17 ipv6 extension headers", decoder.LinkEthernet, frametest.Serialize(tb, ls...), decoder.ReasonIPv6ExtTooMany)
	arpf := frametest.ARPFrame(tb, layers.ARPRequest, frametest.MACA, "10.0.0.1")
	bad("arp cut at 20 bytes", decoder.LinkEthernet, arpf[:14+20], decoder.ReasonARPTruncated)
	return cs
}

func TestDecodeProtocols(t *testing.T) {
	for _, c := range decodeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			var d decoder.Decoder
			var r decoder.Result
			kind := d.Decode(c.link, c.frame, t0.UnixNano(), &r)
			if kind != c.kind {
				t.Fatalf("kind %d (reason %s), want %d", kind, r.Reason, c.kind)
			}
			switch kind {
			case decoder.KindFlow:
				got := r.Key
				want := c.key
				if r.Outgoing != (want.Dir == decoder.DirOut) {
					t.Errorf("outgoing %v, want %v", r.Outgoing, want.Dir == decoder.DirOut)
				}
				got.Dir, want.Dir = 0, 0
				if got != want {
					t.Errorf("key\n got %s %+v\nwant %s %+v", &got, got, &want, want)
				}
			case decoder.KindError:
				if r.Reason != c.reason {
					t.Errorf("reason %s, want %s", r.Reason, c.reason)
				}
			}
			if kind != decoder.KindError && r.EtherType != c.et {
				t.Errorf("ethertype %#04x, want %#04x", r.EtherType, c.et)
			}
			if c.link == decoder.LinkEthernet && kind == decoder.KindFlow {
				crossCheck(t, c.frame, r.Key)
			}
		})
	}
}

// crossCheck compares the key with gopacket's own reading of the frame.
func crossCheck(t *testing.T, frame []byte, k decoder.FlowKey) {
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
	if tl := p.TransportLayer(); tl != nil && decoder.HasPorts(k.Proto) {
		sp, dp := tl.TransportFlow().Endpoints()
		if sp.String() != k.SrcPortLabel() || dp.String() != k.DstPortLabel() {
			t.Errorf("gopacket reads ports %s -> %s, decoder %d -> %d", sp, dp, k.SrcPort, k.DstPort)
		}
	}
}

func TestDecodeIPv4Fragments(t *testing.T) {
	first := frametest.IP4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	first.Flags = layers.IPv4MoreFragments
	first.Id = 4242
	f1 := frametest.Serialize(t, append(frametest.Eth(layers.EthernetTypeIPv4), first, frametest.UDP(5000, 6000, first), frametest.Payload(1472))...)
	later := frametest.IP4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	later.Id = 4242
	later.FragOffset = 185
	f2 := frametest.Serialize(t, append(frametest.Eth(layers.EthernetTypeIPv4), later, frametest.Payload(500))...)
	orphan := frametest.IP4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	orphan.Id = 999
	orphan.FragOffset = 185
	f3 := frametest.Serialize(t, append(frametest.Eth(layers.EthernetTypeIPv4), orphan, frametest.Payload(500))...)

	_, tb := testTable(flowagg.Config{})
	tb.Add(f1, len(f1), decoder.DirIn, t0)
	tb.Add(f2, len(f2), decoder.DirIn, t0)
	tb.Add(f3, len(f3), decoder.DirIn, t0)
	s := tb.PublishSnapshot()
	checkSums(t, s)
	f, ok := flowOf(s, frametest.Key4("10.0.0.1", "10.0.0.2", 5000, 6000, 17, decoder.DirIn))
	if !ok || f.Packets != 2 || f.Bytes != uint64(len(f1)+len(f2)) {
		t.Fatalf("first and later fragment: flow %+v found=%v, want 2 packets %d bytes", f, ok, len(f1)+len(f2))
	}
	if f, ok := flowOf(s, frametest.Key4("10.0.0.1", "10.0.0.2", 0, 0, 17, decoder.DirIn)); !ok || f.Packets != 1 {
		t.Fatalf("orphan later fragment: want a port-0 flow with 1 packet, got %+v found=%v", f, ok)
	}
}

func TestDecodeIPv6Fragments(t *testing.T) {
	mk := func(off uint16, more bool, id uint32, withUDP bool) []byte {
		ip := frametest.IP6("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6Fragment)
		fr := &layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: off, MoreFragments: more, Identification: id}
		ls := append(frametest.Eth(layers.EthernetTypeIPv6), ip, fr)
		if withUDP {
			ls = append(ls, frametest.UDP(7000, 8000, ip))
		}
		return frametest.Serialize(t, append(ls, frametest.Payload(64))...)
	}
	_, tb := testTable(flowagg.Config{})
	for _, f := range [][]byte{mk(0, true, 77, true), mk(9, false, 77, false), mk(9, false, 78, false)} {
		tb.Add(f, len(f), decoder.DirOut, t0)
	}
	s := tb.PublishSnapshot()
	checkSums(t, s)
	if f, ok := flowOf(s, frametest.Key6("2001:db8::1", "2001:db8::2", 7000, 8000, 17, decoder.DirOut)); !ok || f.Packets != 2 {
		t.Fatalf("ipv6 fragments of datagram 77: got %+v found=%v, want 2 packets", f, ok)
	}
	if f, ok := flowOf(s, frametest.Key6("2001:db8::1", "2001:db8::2", 0, 0, 17, decoder.DirOut)); !ok || f.Packets != 1 {
		t.Fatalf("orphan ipv6 fragment: got %+v found=%v, want a port-0 flow", f, ok)
	}
}

// TestDecodeTruncatedAtEveryLength cuts every test frame at every length:
// nothing panics, every frame is counted exactly once, and a frame cut
// inside the headers the decoder needs is a decode error.
func TestDecodeTruncatedAtEveryLength(t *testing.T) {
	for _, c := range decodeCases(t) {
		if c.kind == decoder.KindError {
			continue
		}
		_, tb := testTable(flowagg.Config{})
		var want [decoder.NumReasons]uint64
		errs := 0
		for n := 0; n < len(c.frame); n++ {
			var d decoder.Decoder
			var r decoder.Result
			kind := d.Decode(c.link, c.frame[:n], t0.UnixNano(), &r)
			if kind == decoder.KindError {
				errs++
				want[r.Reason]++
				if r.Reason == decoder.ReasonNone {
					t.Fatalf("%s cut at %d: error without reason", c.name, n)
				}
			}
			if c.link == decoder.LinkEthernet {
				tb.Add(c.frame[:n], n, decoder.DirIn, t0)
			}
			if c.link == decoder.LinkEthernet && n < 14 && kind != decoder.KindError {
				t.Fatalf("%s cut at %d: kind %d, want error", c.name, n, kind)
			}
		}
		if errs == 0 {
			t.Errorf("%s: no cut length was an error", c.name)
		}
		if c.link != decoder.LinkEthernet {
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
	f := frametest.TCP4Frame(t, "10.0.0.1", "10.0.0.2", 1, 2, 0)
	i6 := frametest.IP6("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6HopByHop)
	hbh := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{{OptionType: 0x1e, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
	hbh.NextHeader = layers.IPProtocolTCP
	f6 := frametest.Serialize(t, append(frametest.Eth(layers.EthernetTypeIPv6), i6, hbh, frametest.TCP(1, 2, i6))...)
	v := frametest.IP4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP)
	fv := frametest.Serialize(t, append(frametest.Eth(layers.EthernetTypeIPv4, layers.EthernetTypeDot1Q), v, frametest.TCP(1, 2, v))...)
	for _, c := range []struct {
		frame []byte
		n     int
		want  decoder.Reason
	}{
		{f, 13, decoder.ReasonLinkTruncated},
		{f, 14 + 19, decoder.ReasonIPv4Truncated},
		{f, 14 + 20 + 3, decoder.ReasonL4Truncated},
		{fv, 14 + 3, decoder.ReasonVLANTruncated},
		{f6, 14 + 39, decoder.ReasonIPv6Truncated},
		{f6, 14 + 40 + 1, decoder.ReasonIPv6ExtTruncated},
		{f6, 14 + 40 + 7, decoder.ReasonIPv6ExtTruncated},
		{f6, 14 + 40 + 8 + 3, decoder.ReasonL4Truncated},
	} {
		var d decoder.Decoder
		var r decoder.Result
		if k := d.Decode(decoder.LinkEthernet, c.frame[:c.n], 0, &r); k != decoder.KindError || r.Reason != c.want {
			t.Errorf("cut at %d: kind %d reason %s, want %s", c.n, k, r.Reason, c.want)
		}
	}
	// with the ports present the frame is a flow even if the rest of TCP is cut
	var d decoder.Decoder
	var r decoder.Result
	if k := d.Decode(decoder.LinkEthernet, f[:14+20+4], 0, &r); k != decoder.KindFlow || r.Key.DstPort != 2 {
		t.Errorf("ports present: kind %d key %+v", k, r.Key)
	}
}
