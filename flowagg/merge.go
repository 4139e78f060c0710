package flowagg

import (
	"bytes"
	"slices"
	"strings"

	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// mergeSnapshots combines the snapshots of the shards of one interface.
// Fanout by flow hash keeps a flow on one shard, so flows are normally
// disjoint; a key present in several shards (fragments hashed differently)
// is summed so the interface never exports the same series twice.
func mergeSnapshots(group []*TableSnapshot) *TableSnapshot {
	if len(group) == 1 {
		return group[0]
	}
	m := &TableSnapshot{Interface: group[0].Interface, Time: group[0].Time}
	n := 0
	for _, s := range group {
		n += len(s.Flows)
	}
	index := make(map[decoder.FlowKey]int, n)
	m.Flows = make([]Flow, 0, n)
	ets := make(map[string]uint64)
	type binding struct{ ip, mac string }
	arps := make(map[binding]ARPBinding)
	conflicts := make(map[string]ARPConflict)
	for _, s := range group {
		m.Shards += s.Shards
		if s.Time.After(m.Time) {
			m.Time = s.Time
		}
		m.Limit += s.Limit
		m.Total.AddCounter(s.Total)
		m.Overflow[0].AddCounter(s.Overflow[0])
		m.Overflow[1].AddCounter(s.Overflow[1])
		m.Expired.AddCounter(s.Expired)
		m.NonIP.AddCounter(s.NonIP)
		m.Errors.AddCounter(s.Errors)
		m.Folded += s.Folded
		m.Evicted += s.Evicted
		m.Expiries += s.Expiries
		for r := range s.DecodeErrors {
			m.DecodeErrors[r] += s.DecodeErrors[r]
		}
		for _, f := range s.Flows {
			i, ok := index[f.Key]
			if !ok {
				index[f.Key] = len(m.Flows)
				m.Flows = append(m.Flows, f)
				continue
			}
			g := &m.Flows[i]
			g.Bytes += f.Bytes
			g.Packets += f.Packets
			g.First = min(g.First, f.First)
			g.Last = max(g.Last, f.Last)
		}
		for _, e := range s.EtherTypes {
			ets[e.Label] += e.Packets
		}
		for _, b := range s.ARPBindings {
			k := binding{b.IP.String(), b.MAC.String()}
			if old, ok := arps[k]; !ok || b.Last > old.Last {
				arps[k] = b
			}
		}
		for _, c := range s.ARPConflicts {
			k := c.IP.String()
			old := conflicts[k]
			old.IP = c.IP
			old.Conflicts += c.Conflicts
			conflicts[k] = old
		}
	}
	for l, p := range ets {
		m.EtherTypes = append(m.EtherTypes, EtherTypeCount{Label: l, Packets: p})
	}
	slices.SortFunc(m.EtherTypes, func(a, b EtherTypeCount) int { return strings.Compare(a.Label, b.Label) })
	for _, b := range arps {
		m.ARPBindings = append(m.ARPBindings, b)
	}
	slices.SortFunc(m.ARPBindings, func(x, y ARPBinding) int {
		if c := x.IP.Compare(y.IP); c != 0 {
			return c
		}
		return bytes.Compare(x.MAC, y.MAC)
	})
	for _, c := range conflicts {
		m.ARPConflicts = append(m.ARPConflicts, c)
	}
	slices.SortFunc(m.ARPConflicts, func(x, y ARPConflict) int { return x.IP.Compare(y.IP) })
	return m
}
