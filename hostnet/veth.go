package hostnet

// This file holds the pure logic that ties veth ends (and stacked devices
// whose lower device lives in another namespace) across namespaces. The
// kernel reports, for a link L in namespace V:
//
//	IFLA_LINK          the ifindex of the peer / lower device
//	IFLA_LINK_NETNSID  the netnsid, as assigned *by V*, of the namespace the
//	                   peer lives in; absent (-1) when it is V itself
//
// A netnsid only means something to the namespace that assigned it, so the
// scanner asks each viewer V for the netnsid it gives every plausible
// candidate namespace (RTM_GETNSID with the candidate's fd) and feeds the
// answers here as nsids[V][nsid] = candidate ID.

// linkRec is a link plus where rtnetlink said its peer or lower device lives.
type linkRec struct {
	Link
	// linkNsid is IFLA_LINK_NETNSID as seen from Link.Netns: -1 when the
	// peer (veth) or lower device (ParentIndex) is in the same namespace.
	linkNsid int
}

// nsIndex is a (namespace, ifindex) pair.
type nsIndex struct {
	netns string
	index int
}

// linkTable indexes link records for peer resolution.
type linkTable struct {
	recs  []linkRec
	byKey map[nsIndex]int // (netns, ifindex) -> position in recs
	byIdx map[int][]int   // ifindex -> positions in recs, in every namespace
}

func newLinkTable(recs []linkRec) *linkTable {
	t := &linkTable{recs: recs, byKey: make(map[nsIndex]int, len(recs)), byIdx: make(map[int][]int, len(recs))}
	for i, r := range recs {
		t.byKey[nsIndex{r.Netns, r.Index}] = i
		t.byIdx[r.Index] = append(t.byIdx[r.Index], i)
	}
	return t
}

// remoteIndex returns the ifindex r points at in another namespace (veth peer
// or lower device) and whether r needs a netnsid resolved to find it.
func remoteIndex(r *linkRec) (int, bool) {
	if r.linkNsid < 0 {
		return 0, false
	}
	if r.Kind == "veth" {
		return r.PeerIndex, r.PeerIndex > 0
	}
	return r.ParentIndex, r.ParentIndex > 0
}

// isVethMirror reports whether c could be the other end of veth r living in
// another namespace: c is a veth with r's peer index whose own peer index is
// r's index, and whose peer is itself in another namespace.
func isVethMirror(r, c *linkRec) bool {
	return c.Kind == "veth" && c.Netns != r.Netns && c.Index == r.PeerIndex &&
		c.PeerIndex == r.Index && c.linkNsid >= 0
}

// neededNsids returns the netnsids that links of viewer refer to.
func neededNsids(recs []linkRec) map[int]bool {
	var need map[int]bool
	for i := range recs {
		if _, ok := remoteIndex(&recs[i]); ok {
			if need == nil {
				need = make(map[int]bool)
			}
			need[recs[i].linkNsid] = true
		}
	}
	return need
}

// candidates returns, best first, the namespaces other than viewer that may be
// the one viewer calls nsid: those holding a veth mirroring one of viewer's
// veths with that nsid, then those holding any link with the ifindex a stacked
// device points at. Namespaces holding no such link cannot hold the peer, so
// asking the kernel about them is useless.
func (t *linkTable) candidates(viewer string, nsid int) []string {
	var strong, weak []string
	seen := map[string]bool{viewer: true}
	add := func(list *[]string, ns string) {
		if !seen[ns] {
			seen[ns] = true
			*list = append(*list, ns)
		}
	}
	for i := range t.recs {
		r := &t.recs[i]
		if r.Netns != viewer || r.linkNsid != nsid {
			continue
		}
		idx, ok := remoteIndex(r)
		if !ok {
			continue
		}
		for _, j := range t.byIdx[idx] {
			c := &t.recs[j]
			if r.Kind == "veth" && isVethMirror(r, c) {
				add(&strong, c.Netns)
			}
		}
		if r.Kind != "veth" {
			for _, j := range t.byIdx[idx] {
				add(&weak, t.recs[j].Netns)
			}
		}
	}
	return append(strong, weak...)
}

// resolvePeers sets PeerNetns/PeerName of veths and Parent/ParentNetns of
// stacked devices. nsids[viewer][nsid] is the namespace ID that viewer's
// netnsid nsid stands for; it may be incomplete. A veth whose nsid is unknown
// falls back to the unique veth elsewhere that mirrors it (index == my peer
// index, its peer index == my index); ambiguous matches stay unresolved.
func (t *linkTable) resolvePeers(nsids map[string]map[int]string) {
	for i := range t.recs {
		r := &t.recs[i]
		if r.Kind == "veth" {
			t.resolveVeth(r, nsids)
		} else {
			t.resolveParent(r, nsids)
		}
	}
}

func (t *linkTable) resolveVeth(r *linkRec, nsids map[string]map[int]string) {
	if r.PeerIndex <= 0 {
		return
	}
	if r.linkNsid < 0 {
		if j, ok := t.byKey[nsIndex{r.Netns, r.PeerIndex}]; ok {
			r.PeerNetns, r.PeerName = r.Netns, t.recs[j].Name
		}
		return
	}
	if target, ok := nsids[r.Netns][r.linkNsid]; ok {
		if j, ok := t.byKey[nsIndex{target, r.PeerIndex}]; ok {
			r.PeerNetns, r.PeerName = target, t.recs[j].Name
		}
		return
	}
	// Fallback: a unique mirror. Skip namespaces the viewer is known to
	// call by another nsid, and mirrors known to point elsewhere.
	known := make(map[string]bool, len(nsids[r.Netns]))
	for _, ns := range nsids[r.Netns] {
		known[ns] = true
	}
	match := -1
	for _, j := range t.byIdx[r.PeerIndex] {
		c := &t.recs[j]
		if !isVethMirror(r, c) || known[c.Netns] {
			continue
		}
		if back, ok := nsids[c.Netns][c.linkNsid]; ok && back != r.Netns {
			continue
		}
		if match >= 0 {
			return // ambiguous
		}
		match = j
	}
	if match >= 0 {
		r.PeerNetns, r.PeerName = t.recs[match].Netns, t.recs[match].Name
	}
}

func (t *linkTable) resolveParent(r *linkRec, nsids map[string]map[int]string) {
	if r.ParentIndex <= 0 {
		return
	}
	target := r.Netns
	if r.linkNsid >= 0 {
		var ok bool
		if target, ok = nsids[r.Netns][r.linkNsid]; !ok {
			return
		}
	}
	if j, ok := t.byKey[nsIndex{target, r.ParentIndex}]; ok {
		r.ParentNetns, r.Parent = target, t.recs[j].Name
	}
}
