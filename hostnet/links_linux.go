//go:build linux

package hostnet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nsRead is what one worker read from one namespace.
type nsRead struct {
	ns   Namespace
	recs []linkRec
	// handle stays open after the read only when some netnsid of this
	// namespace is not in the cache and must be asked of the kernel.
	handle *netlink.Handle
	nsids  map[int]string // this namespace's netnsid -> Namespace.ID
	warn   error          // partial failure (bridge port states)
	err    error          // the namespace could not be read
}

// readNamespace opens an rtnetlink socket inside ns and dumps its links and
// addresses, plus bridge port states when the namespace has bridge ports. The
// socket is created with NewHandleAt, which enters the namespace only on a
// locked OS thread and only for the socket(2) call; every dump then runs
// without switching namespaces. The scanner's own namespace needs no setns at
// all, so it can be read without privileges.
func (s *Scanner) readNamespace(ctx context.Context, ns Namespace, selfIno uint64, canEnter bool) (h *netlink.Handle, recs []linkRec, warn, err error) {
	fd := netns.None()
	if ns.Inode != selfIno {
		if !canEnter {
			return nil, nil, nil, fmt.Errorf("enter namespace: %w — run as root or grant CAP_SYS_ADMIN", fs.ErrPermission)
		}
		if fd, err = openNS(ns); err != nil {
			return nil, nil, nil, err
		}
		defer fd.Close()
	}
	if h, err = netlink.NewHandleAt(fd, unix.NETLINK_ROUTE); err != nil {
		return nil, nil, nil, fmt.Errorf("open rtnetlink socket in the namespace: %w", err)
	}
	defer func() {
		if err != nil {
			h.Close()
			h = nil
		}
	}()
	var deadline time.Time
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl
		if err = h.SetSocketTimeout(max(time.Until(dl), time.Millisecond)); err != nil {
			return h, nil, nil, fmt.Errorf("set rtnetlink timeout: %w", err)
		}
	}
	links, err := dumpRetry(h.LinkList)
	if err != nil {
		return h, nil, nil, fmt.Errorf("dump links (RTM_GETLINK): %w", err)
	}
	addrs, err := dumpRetry(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return h, nil, nil, fmt.Errorf("dump addresses (RTM_GETADDR): %w", err)
	}
	recs = buildRecs(ns.ID, links, addrs)
	if hasBridgePorts(recs) {
		nsfd := 0
		if fd.IsOpen() {
			nsfd = int(fd)
		}
		states, berr := bridgePortStates(nsfd, deadline)
		if berr != nil {
			warn = berr
		}
		for i := range recs {
			if recs[i].MasterKind == "bridge" {
				recs[i].STPState = states[recs[i].Index]
			}
		}
	}
	return h, recs, warn, nil
}

// dumpRetry repeats a dump the kernel reported as interrupted by a concurrent
// change (NLM_F_DUMP_INTR); after three tries it keeps the last result.
func dumpRetry[T any](dump func() ([]T, error)) ([]T, error) {
	var (
		out []T
		err error
	)
	for range 3 {
		out, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return out, nil
}

func hasBridgePorts(recs []linkRec) bool {
	return slices.ContainsFunc(recs, func(r linkRec) bool { return r.MasterKind == "bridge" })
}

// buildRecs converts one namespace's rtnetlink dumps into link records, with
// masters, same-namespace lower devices and addresses filled in.
func buildRecs(netnsID string, links []netlink.Link, addrs []netlink.Addr) []linkRec {
	recs := make([]linkRec, len(links))
	byIndex := make(map[int]int, len(links))
	for i, l := range links {
		recs[i] = convertLink(netnsID, l)
		byIndex[recs[i].Index] = i
	}
	for i := range recs {
		r := &recs[i]
		if j, ok := byIndex[r.MasterIndex]; ok && r.MasterIndex > 0 {
			r.Master, r.MasterKind = recs[j].Name, recs[j].Kind
		}
	}
	for _, a := range addrs {
		j, ok := byIndex[a.LinkIndex]
		if !ok || a.IPNet == nil {
			continue
		}
		if p, fam, ok := toPrefix(a.IPNet); ok {
			recs[j].Addrs = append(recs[j].Addrs, Addr{Prefix: p, Family: fam})
		}
	}
	return recs
}

// toPrefix converts an address from the dump; the family follows the raw
// address length as the kernel sent it.
func toPrefix(n *net.IPNet) (netip.Prefix, string, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, "", false
	}
	bits, _ := n.Mask.Size()
	fam := "inet6"
	if ip.Is4() {
		fam = "inet"
	}
	return netip.PrefixFrom(ip, bits), fam, true
}

// convertLink maps one vishvananda link to a record.
func convertLink(netnsID string, l netlink.Link) linkRec {
	a := l.Attrs()
	r := linkRec{
		Link: Link{
			Netns:       netnsID,
			Name:        a.Name,
			Index:       a.Index,
			Kind:        linkKind(l),
			MTU:         a.MTU,
			OperState:   operState(uint8(a.OperState)),
			MasterIndex: a.MasterIndex,
		},
		linkNsid: a.NetNsID,
	}
	if len(a.HardwareAddr) > 0 {
		r.MAC = a.HardwareAddr.String()
	}
	if st := a.Statistics; st != nil {
		r.Stats = Stats{
			RxBytes: st.RxBytes, RxPackets: st.RxPackets, RxErrors: st.RxErrors, RxDropped: st.RxDropped,
			TxBytes: st.TxBytes, TxPackets: st.TxPackets, TxErrors: st.TxErrors, TxDropped: st.TxDropped,
		}
	}
	switch v := l.(type) {
	case *netlink.Veth:
		r.PeerIndex = a.ParentIndex // IFLA_LINK of a veth is its peer
	case *netlink.Vxlan:
		r.ParentIndex = v.VtepDevIndex // vxlan reports its lower device in IFLA_VXLAN_LINK only
	default:
		r.ParentIndex = a.ParentIndex
	}
	return r
}

// linkKind names the kind of a link: the kernel's IFLA_INFO_KIND, except that
// tun devices are split into "tun" and "tap", and devices without a kind
// (no rtnl_link_ops: real hardware, lo) are "loopback" or "physical".
func linkKind(l netlink.Link) string {
	switch v := l.(type) {
	case *netlink.Device:
		if v.Flags&net.FlagLoopback != 0 || v.EncapType == "loopback" {
			return "loopback"
		}
		return "physical"
	case *netlink.Tuntap:
		switch v.Mode {
		case netlink.TUNTAP_MODE_TAP:
			return "tap"
		case netlink.TUNTAP_MODE_TUN:
			return "tun"
		}
		return "tuntap"
	case *netlink.GenericLink:
		return v.LinkType // e.g. "openvswitch", "nlmon"
	}
	return l.Type()
}

// operState names IF_OPER_* (RFC 2863, linux/if.h) as iproute2 does, in
// lower case.
func operState(s uint8) string {
	switch s {
	case 1:
		return "notpresent"
	case 2:
		return "down"
	case 3:
		return "lowerlayerdown"
	case 4:
		return "testing"
	case 5:
		return "dormant"
	case 6:
		return "up"
	}
	return "unknown"
}
