package ovsview

import (
	"cmp"
	"log/slog"
	"slices"
	"time"

	"github.com/ovn-org/libovsdb/model"
)

// rows are the cached rows of the monitored tables, by UUID. They are
// libovsdb's own objects (RowsShallow): read only.
type rows struct {
	root        map[string]model.Model
	bridges     map[string]model.Model
	controllers map[string]model.Model
	ports       map[string]model.Model
	ifaces      map[string]model.Model
}

// build joins the rows into a topology (no statistics). Rows that do not fit
// (a reference to a row not in the cache, a row of another type) are left
// out, logged at debug and counted in skipped.
func build(r rows, log *slog.Logger) (v View, skipped int) {
	skip := func(msg string, args ...any) {
		skipped++
		log.Debug(msg, args...)
	}
	for uuid, m := range r.root {
		root, ok := m.(*ovsRoot)
		if !ok {
			skip("OVSDB row of an unexpected type left out", "table", tableRoot, "uuid", uuid)
			continue
		}
		v.SystemID = root.ExternalIDs["system-id"]
		v.Version, v.DBVersion = deref(root.OVSVersion), deref(root.DBVersion)
	}
	for uuid, m := range r.bridges {
		b, ok := m.(*ovsBridge)
		if !ok {
			skip("OVSDB row of an unexpected type left out", "table", tableBridge, "uuid", uuid)
			continue
		}
		br := Bridge{UUID: uuid, Name: b.Name, DatapathType: b.DatapathType, FailMode: deref(b.FailMode)}
		if br.DatapathType == "" {
			br.DatapathType = "system"
		}
		for _, cu := range b.Controller {
			c, ok := r.controllers[cu].(*ovsController)
			if !ok {
				skip("bridge's controller not in the cache, left out", "bridge", b.Name, "controller", cu)
				continue
			}
			br.Controllers = append(br.Controllers, Controller{Target: c.Target, Connected: c.IsConnected})
		}
		slices.SortFunc(br.Controllers, func(a, b Controller) int { return cmp.Compare(a.Target, b.Target) })
		for _, pu := range b.Ports {
			p, ok := r.ports[pu].(*ovsPort)
			if !ok {
				skip("bridge's port not in the cache, left out", "bridge", b.Name, "port", pu)
				continue
			}
			port := Port{UUID: pu, Name: p.Name, Tag: -1, Trunks: slices.Sorted(slices.Values(p.Trunks)),
				VLANMode: deref(p.VLANMode)}
			if p.Tag != nil {
				port.Tag = *p.Tag
			}
			for _, iu := range p.Interfaces {
				i, ok := r.ifaces[iu].(*ovsInterface)
				if !ok {
					skip("port's interface not in the cache, left out", "port", p.Name, "interface", iu)
					continue
				}
				port.Interfaces = append(port.Interfaces, iface(iu, i))
			}
			if len(port.Interfaces) > 1 {
				port.BondMode = deref(p.BondMode)
				if port.BondMode == "" {
					port.BondMode = "active-backup" // OVS's default for a bond
				}
			}
			slices.SortFunc(port.Interfaces, func(a, b Interface) int { return cmp.Compare(a.Name, b.Name) })
			br.Ports = append(br.Ports, port)
		}
		slices.SortFunc(br.Ports, func(a, b Port) int { return cmp.Compare(a.Name, b.Name) })
		v.Bridges = append(v.Bridges, br)
	}
	slices.SortFunc(v.Bridges, func(a, b Bridge) int { return cmp.Compare(a.Name, b.Name) })
	v.Built = time.Now()
	return v, skipped
}

func iface(uuid string, i *ovsInterface) Interface {
	out := Interface{
		UUID: uuid, Name: i.Name, Type: i.Type, OFPort: -1,
		MAC: deref(i.MACInUse), AdminState: deref(i.AdminState), LinkState: deref(i.LinkState),
		Error:          deref(i.Error),
		Peer:           i.Options["peer"],
		RemoteIP:       i.Options["remote_ip"],
		LocalIP:        i.Options["local_ip"],
		Key:            i.Options["key"],
		DstPort:        i.Options["dst_port"],
		TunnelEgress:   i.Status["tunnel_egress_iface"],
		AttachedMAC:    i.ExternalIDs["attached-mac"],
		IfaceID:        i.ExternalIDs["iface-id"],
		VMID:           i.ExternalIDs["vm-id"],
		ContainerID:    i.ExternalIDs["container_id"],
		ContainerIface: i.ExternalIDs["container_iface"],
	}
	if out.Type == "" {
		out.Type = "system"
	}
	if i.OFPort != nil && *i.OFPort >= 0 {
		out.OFPort = *i.OFPort
	}
	return out
}

// statsOf reads the statistics column. Keys OVS does not write (a driver
// without rx_dropped) are 0; HasStats is false when the column is empty.
func statsOf(i *ovsInterface) (Stats, bool) {
	s := i.Statistics
	if len(s) == 0 {
		return Stats{}, false
	}
	get := func(k string) uint64 {
		if v := s[k]; v > 0 {
			return uint64(v)
		}
		return 0
	}
	return Stats{
		RxBytes: get("rx_bytes"), RxPackets: get("rx_packets"), RxDropped: get("rx_dropped"), RxErrors: get("rx_errors"),
		TxBytes: get("tx_bytes"), TxPackets: get("tx_packets"), TxDropped: get("tx_dropped"), TxErrors: get("tx_errors"),
	}, true
}

// withStats returns a copy of topo with each interface's statistics from
// ifaces. Interfaces are copied; the rest is shared with topo.
func withStats(topo *View, ifaces map[string]model.Model) View {
	v := *topo
	v.Bridges = slices.Clone(topo.Bridges)
	for bi := range v.Bridges {
		b := &v.Bridges[bi]
		b.Ports = slices.Clone(b.Ports)
		for pi := range b.Ports {
			p := &b.Ports[pi]
			p.Interfaces = slices.Clone(p.Interfaces)
			for ii := range p.Interfaces {
				in := &p.Interfaces[ii]
				if row, ok := ifaces[in.UUID].(*ovsInterface); ok {
					in.Stats, in.HasStats = statsOf(row)
				}
			}
		}
	}
	return v
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
