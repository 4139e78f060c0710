package hostnet

import (
	"maps"
	"slices"
	"testing"
)

// veth builds a veth record: name/index in netns, peer index, and the
// IFLA_LINK_NETNSID the namespace reported (-1 same namespace).
func veth(netns, name string, index, peer, nsid int) linkRec {
	return linkRec{Link: Link{Netns: netns, Name: name, Index: index, Kind: "veth", PeerIndex: peer}, linkNsid: nsid}
}

func stacked(netns, name, kind string, index, parent, nsid int) linkRec {
	return linkRec{Link: Link{Netns: netns, Name: name, Index: index, Kind: kind, ParentIndex: parent}, linkNsid: nsid}
}

type peer struct{ netns, name string }

func peers(t *linkTable) map[peer]peer {
	out := map[peer]peer{}
	for _, r := range t.recs {
		if r.Kind == "veth" {
			out[peer{r.Netns, r.Name}] = peer{r.PeerNetns, r.PeerName}
		}
	}
	return out
}

func TestResolvePeersSameNamespace(t *testing.T) {
	tb := newLinkTable([]linkRec{
		veth("host", "vA", 10, 11, -1),
		veth("host", "vB", 11, 10, -1),
		veth("host", "orphan", 12, 0, -1), // peer gone
	})
	tb.resolvePeers(nil)
	want := map[peer]peer{
		{"host", "vA"}: {"host", "vB"}, {"host", "vB"}: {"host", "vA"}, {"host", "orphan"}: {},
	}
	if got := peers(tb); !maps.Equal(got, want) {
		t.Errorf("peers = %v, want %v", got, want)
	}
}

// Three containers whose eth0 all have ifindex 2 and whose host ends are 5,
// 6, 7: every container's eth0 mirrors a different host veth, but the host
// veths' peer index (2) matches all three containers.
func collisionTable() []linkRec {
	return []linkRec{
		veth("host", "vethA", 5, 2, 0),
		veth("host", "vethB", 6, 2, 1),
		veth("host", "vethC", 7, 2, 2),
		veth("docker:a", "eth0", 2, 5, 0),
		veth("docker:b", "eth0", 2, 6, 0),
		veth("docker:c", "eth0", 2, 7, 0),
	}
}

func TestResolvePeersByNsid(t *testing.T) {
	tb := newLinkTable(collisionTable())
	tb.resolvePeers(map[string]map[int]string{
		"host":     {0: "docker:a", 1: "docker:b", 2: "docker:c"},
		"docker:a": {0: "host"},
		"docker:b": {0: "host"},
		"docker:c": {0: "host"},
	})
	want := map[peer]peer{
		{"host", "vethA"}: {"docker:a", "eth0"}, {"docker:a", "eth0"}: {"host", "vethA"},
		{"host", "vethB"}: {"docker:b", "eth0"}, {"docker:b", "eth0"}: {"host", "vethB"},
		{"host", "vethC"}: {"docker:c", "eth0"}, {"docker:c", "eth0"}: {"host", "vethC"},
	}
	if got := peers(tb); !maps.Equal(got, want) {
		t.Errorf("peers = %v, want %v", got, want)
	}
}

func TestResolvePeersFallbackUnique(t *testing.T) {
	// No nsid known anywhere: each container mirrors exactly one host veth
	// (index 5/6/7 with peer 2), and each host veth has three candidates
	// whose index is 2, but only one whose peer index is its own index.
	tb := newLinkTable(collisionTable())
	tb.resolvePeers(nil)
	want := map[peer]peer{
		{"host", "vethA"}: {"docker:a", "eth0"}, {"docker:a", "eth0"}: {"host", "vethA"},
		{"host", "vethB"}: {"docker:b", "eth0"}, {"docker:b", "eth0"}: {"host", "vethB"},
		{"host", "vethC"}: {"docker:c", "eth0"}, {"docker:c", "eth0"}: {"host", "vethC"},
	}
	if got := peers(tb); !maps.Equal(got, want) {
		t.Errorf("peers = %v, want %v", got, want)
	}
}

func TestResolvePeersFallbackAmbiguous(t *testing.T) {
	// Two hosts-worth of identical numbering: ns1 and ns2 both hold a veth 2
	// whose peer is 5, and both ns3 and host hold a veth 5 whose peer is 2.
	recs := []linkRec{
		veth("host", "vethA", 5, 2, 0),
		veth("named:x", "v5", 5, 2, 0),
		veth("ino:1", "eth0", 2, 5, 0),
		veth("ino:2", "eth0", 2, 5, 0),
	}
	tb := newLinkTable(slices.Clone(recs))
	tb.resolvePeers(nil)
	for k, v := range peers(tb) {
		if v != (peer{}) {
			t.Errorf("%v resolved to %v despite ambiguity", k, v)
		}
	}

	// With the nsids of the host and of ino:1 known, those resolve; the rest
	// is disambiguated by elimination: named:x can no longer be ino:1's
	// peer (ino:1 knows its nsid 0 is host), and host is taken by nsid.
	tb = newLinkTable(slices.Clone(recs))
	tb.resolvePeers(map[string]map[int]string{
		"host":  {0: "ino:1"},
		"ino:1": {0: "host"},
	})
	want := map[peer]peer{
		{"host", "vethA"}: {"ino:1", "eth0"},
		{"ino:1", "eth0"}: {"host", "vethA"},
		{"named:x", "v5"}: {"ino:2", "eth0"},
		{"ino:2", "eth0"}: {"named:x", "v5"},
	}
	if got := peers(tb); !maps.Equal(got, want) {
		t.Errorf("peers = %v, want %v", got, want)
	}
}

func TestResolvePeersNsidOfUnknownNamespace(t *testing.T) {
	// The host's nsid 3 maps to a namespace that is not in the scan (held
	// only by an fd): its peer must stay unknown even though a lookalike
	// exists elsewhere, because the host knows nsid 3 is not named:x.
	tb := newLinkTable([]linkRec{
		veth("host", "vethA", 5, 2, 3),
		veth("host", "vethB", 6, 9, 4),
		veth("named:x", "eth0", 2, 5, 0),
	})
	tb.resolvePeers(map[string]map[int]string{
		"host":    {4: "named:x"},
		"named:x": {0: "host"},
	})
	got := peers(tb)
	if p := got[peer{"host", "vethA"}]; p != (peer{}) {
		t.Errorf("vethA resolved to %v", p)
	}
	if p := got[peer{"host", "vethB"}]; p != (peer{}) {
		t.Errorf("vethB resolved to %v, named:x has no ifindex 9", p)
	}
	// named:x's nsid 0 is host, and host has ifindex 5: trust the nsid.
	if p := got[peer{"named:x", "eth0"}]; p != (peer{"host", "vethA"}) {
		t.Errorf("named:x eth0 resolved to %v", p)
	}
}

func TestResolveParents(t *testing.T) {
	tb := newLinkTable([]linkRec{
		{Link: Link{Netns: "host", Name: "eth0", Index: 2, Kind: "physical"}, linkNsid: -1},
		stacked("host", "eth0.10", "vlan", 7, 2, -1),
		stacked("host", "vx0", "vxlan", 8, 2, -1),
		stacked("host", "dangling", "macvlan", 9, 42, -1),
		stacked("docker:a", "eth0", "macvlan", 3, 2, 0), // lower device in host
		stacked("docker:b", "eth0", "ipvlan", 3, 2, 5),  // nsid unknown
		{Link: Link{Netns: "docker:a", Name: "lo", Index: 1, Kind: "loopback"}, linkNsid: -1},
	})
	tb.resolvePeers(map[string]map[int]string{"docker:a": {0: "host"}})
	type par struct{ netns, name string }
	got := map[par]par{}
	for _, r := range tb.recs {
		got[par{r.Netns, r.Name}] = par{r.ParentNetns, r.Parent}
	}
	want := map[par]par{
		{"host", "eth0"}: {}, {"host", "eth0.10"}: {"host", "eth0"}, {"host", "vx0"}: {"host", "eth0"},
		{"host", "dangling"}: {}, {"docker:a", "eth0"}: {"host", "eth0"}, {"docker:b", "eth0"}: {},
		{"docker:a", "lo"}: {},
	}
	if !maps.Equal(got, want) {
		t.Errorf("parents = %v, want %v", got, want)
	}
}

func TestNeededNsidsAndCandidates(t *testing.T) {
	recs := append(collisionTable(),
		veth("host", "local", 20, 21, -1),
		stacked("host", "mv0", "macvlan", 30, 2, 7),
		linkRec{Link: Link{Netns: "named:z", Name: "eth9", Index: 2, Kind: "physical"}, linkNsid: -1},
	)
	need := neededNsids(recs[:3])
	if len(need) != 3 || !need[0] || !need[1] || !need[2] {
		t.Errorf("neededNsids(host veths) = %v", need)
	}
	if n := neededNsids([]linkRec{veth("host", "local", 20, 21, -1), veth("host", "x", 1, 0, 3)}); n != nil {
		t.Errorf("neededNsids(no remote) = %v", n)
	}
	tb := newLinkTable(recs)
	if got := tb.candidates("host", 1); !slices.Equal(got, []string{"docker:b"}) {
		t.Errorf("candidates(host, 1) = %v", got)
	}
	if got := tb.candidates("docker:a", 0); !slices.Equal(got, []string{"host"}) {
		t.Errorf("candidates(docker:a, 0) = %v", got)
	}
	// A macvlan's lower device can be any link with its index, viewer excluded.
	got := tb.candidates("host", 7)
	slices.Sort(got)
	if !slices.Equal(got, []string{"docker:a", "docker:b", "docker:c", "named:z"}) {
		t.Errorf("candidates(host, 7) = %v", got)
	}
	if got := tb.candidates("host", 9); len(got) != 0 {
		t.Errorf("candidates(host, 9) = %v", got)
	}
}
