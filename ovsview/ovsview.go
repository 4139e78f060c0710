// Package ovsview keeps a cached view of Open vSwitch — bridges, ports,
// interfaces, patch links, tunnels and the interfaces' counters — read from
// ovsdb-server with an OVSDB monitor (github.com/ovn-org/libovsdb: monitor,
// cache, schema-checked models), so no scrape ever queries OVSDB.
//
// Changes of the topology arrive as monitor updates and mark the view for
// rebuild; the statistics column, which ovs-vswitchd rewrites every few
// seconds, is read from the cache on each [Watcher.View] without a
// rebuild. A lost connection (ovsdb-server stopped or restarted, a hung
// server that stops answering echo) ends the session; the watcher logs once
// per outage and reconnects with backoff on a fresh client and monitor.
//
// Typical use:
//
//	w, err := ovsview.New(ovsview.Options{Logger: logger})
//	if err != nil { ... }
//	defer w.Close()
//	go w.Run(ctx)
//	...
//	v, err := w.View() // on each scrape; err wraps ErrUnavailable while OVSDB is unreachable
package ovsview

import (
	"errors"
	"time"
)

// ErrUnavailable is wrapped by View's error while OVSDB cannot be reached
// (Open vSwitch not installed, stopped, restarting) or has not answered the
// first monitor.
var ErrUnavailable = errors.New("OVSDB unavailable")

// View is a consistent copy of the cache. Bridges, their Ports and the
// ports' Interfaces are sorted by name; callers must not modify them.
type View struct {
	// SystemID is the Open_vSwitch row's external_ids:system-id.
	SystemID string
	// Version is ovs_version ("3.1.0"), DBVersion the schema version.
	Version, DBVersion string
	Bridges            []Bridge
	// Built is when the topology was last rebuilt from the cache.
	Built time.Time
	// Skipped counts, since start, rows left out of the view because they
	// did not fit it (a port on no bridge, a reference to a missing row, a
	// row of an unexpected type): never a failed view.
	Skipped uint64
}

// Bridge is one OVS bridge.
type Bridge struct {
	UUID string
	Name string
	// DatapathType is "system" or "netdev" ("" in OVSDB means system).
	DatapathType string
	// FailMode is "standalone" or "secure" ("" when unset: standalone).
	FailMode    string
	Controllers []Controller
	Ports       []Port
}

// Controller is an OpenFlow controller of a bridge.
type Controller struct {
	Target    string // "tcp:192.0.2.9:6653"
	Connected bool
}

// Port is one port of a bridge: a single interface, or a bond of several.
type Port struct {
	UUID string
	Name string
	// Tag is the access VLAN, -1 when the port has none.
	Tag int
	// Trunks are the VLANs a trunk port carries (none: all).
	Trunks []int
	// VLANMode is access, trunk, native-tagged, native-untagged, dot1q-tunnel
	// or "" (OVS then infers it from Tag and Trunks).
	VLANMode string
	// BondMode is the bond's mode (balance-tcp, balance-slb, active-backup)
	// when the port has several interfaces, else "".
	BondMode   string
	Interfaces []Interface
}

// Bonded reports whether the port is a bond of several interfaces.
func (p *Port) Bonded() bool { return len(p.Interfaces) > 1 }

// Interface is one OVS interface.
type Interface struct {
	UUID string
	Name string
	// Type is system (a kernel device: veth, tap, NIC), internal (the
	// bridge's own port), patch, vxlan, geneve, gre, stt, tap, dpdk,
	// dpdkvhostuser... OVSDB's "" is reported as "system".
	Type string
	// OFPort is the OpenFlow port number, -1 when OVS could not add the
	// interface (see Error) or has not assigned one yet.
	OFPort int
	// MAC is mac_in_use.
	MAC string
	// AdminState and LinkState are "up", "down" or "" when unknown.
	AdminState, LinkState string
	// Error is why OVS could not add the interface ("could not open network
	// device x (No such device)"), "" when it works.
	Error string
	// Peer is a patch interface's options:peer.
	Peer string
	// RemoteIP, LocalIP, Key and DstPort are a tunnel's options.
	RemoteIP, LocalIP, Key, DstPort string
	// TunnelEgress is status:tunnel_egress_iface, the kernel device that
	// carries a tunnel's packets.
	TunnelEgress string
	// The external_ids hypervisors and ovs-docker write: attached-mac,
	// iface-id, vm-id (libvirt, OpenStack) and container_id,
	// container_iface (ovs-docker).
	AttachedMAC, IfaceID, VMID, ContainerID, ContainerIface string
	// Stats are the statistics column as read at View time; HasStats is
	// false when OVS reports none (a patch port, an interface that failed).
	Stats    Stats
	HasStats bool
}

// Tunnel reports whether the interface is a tunnel endpoint.
func (i *Interface) Tunnel() bool { return i.RemoteIP != "" }

// Stats are an interface's counters as ovs-vswitchd writes them to the
// statistics column (refreshed every stats-update-interval, 5 s by default).
type Stats struct {
	RxBytes, RxPackets, RxDropped, RxErrors uint64
	TxBytes, TxPackets, TxDropped, TxErrors uint64
}
