package flowagg

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/flowagg/decoder"
	"github.com/tangfeixiong/nta/internal/frametest"

	"github.com/gopacket/gopacket/layers"
)

func TestARPBindingsAndConflicts(t *testing.T) {
	_, tb := testTable(Config{ArpConflictWindow: 10 * time.Second, IdleTimeout: time.Hour})
	add := func(f []byte, at time.Duration) { tb.Add(f, len(f), decoder.DirIn, t0.Add(at)) }
	add(frametest.ARPFrame(t, layers.ARPReply, frametest.MACA, "10.0.0.1"), 0)
	add(frametest.ARPFrame(t, layers.ARPRequest, frametest.MACA, "10.0.0.1"), time.Second) // same claim again: fine
	add(frametest.ARPFrame(t, layers.ARPReply, frametest.MACB, "10.0.0.1"), 2*time.Second) // another MAC within 10s: conflict
	add(frametest.ARPFrame(t, layers.ARPReply, frametest.MACA, "10.0.0.1"), 3*time.Second) // and back: conflict
	add(frametest.ARPFrame(t, layers.ARPReply, frametest.MACC, "10.0.0.2"), 0)
	add(frametest.ARPFrame(t, layers.ARPReply, frametest.MACB, "10.0.0.2"), time.Minute)  // moved after the window: no conflict
	add(frametest.ARPFrame(t, layers.ARPRequest, frametest.MACC, "0.0.0.0"), time.Minute) // probe claims nothing
	s := tb.PublishSnapshot()
	checkSums(t, s)
	if s.NonIP.Packets != 7 || len(s.EtherTypes) != 1 || s.EtherTypes[0].Label != "0x0806" {
		t.Fatalf("ARP frames must be counted under ethertype 0x0806: %+v", s.EtherTypes)
	}
	want := []struct{ ip, mac string }{
		{"10.0.0.1", frametest.MACA.String()}, {"10.0.0.1", frametest.MACB.String()},
		{"10.0.0.2", frametest.MACB.String()}, {"10.0.0.2", frametest.MACC.String()},
	}
	if len(s.ARPBindings) != len(want) {
		t.Fatalf("bindings %+v, want %v", s.ARPBindings, want)
	}
	for i, w := range want {
		if b := s.ARPBindings[i]; b.IP.String() != w.ip || b.MAC.String() != w.mac {
			t.Errorf("binding %d = %s %s, want %s %s", i, b.IP, b.MAC, w.ip, w.mac)
		}
	}
	if len(s.ARPConflicts) != 1 || s.ARPConflicts[0].IP != netip.MustParseAddr("10.0.0.1") || s.ARPConflicts[0].Conflicts != 2 {
		t.Fatalf("conflicts %+v, want 2 for 10.0.0.1 only", s.ARPConflicts)
	}
	// bindings expire with the idle timeout
	tb.publishAt(t0.Add(2*time.Hour).UnixNano(), true)
	if s := tb.Published(); len(s.ARPBindings) != 0 || len(s.ARPConflicts) != 1 {
		t.Fatalf("after idle timeout: bindings %+v conflicts %+v", s.ARPBindings, s.ARPConflicts)
	}
}

func TestARPBindingCap(t *testing.T) {
	_, tb := testTable(Config{MaxARPBindings: 3})
	for i, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		f := frametest.ARPFrame(t, layers.ARPReply, frametest.MACA, ip)
		tb.Add(f, len(f), decoder.DirIn, t0.Add(time.Duration(i)))
	}
	if s := tb.PublishSnapshot(); len(s.ARPBindings) != 3 {
		t.Fatalf("%d bindings kept, cap 3", len(s.ARPBindings))
	}
}
