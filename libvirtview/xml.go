package libvirtview

import (
	"encoding/xml"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// domainNICs is the part of a domain's XML the view needs. Decoding only
// it (the <interface> elements through libvirtxml) takes a third less time
// than libvirtxml.Domain, which decodes every device, CPU feature and
// seclabel (BenchmarkParse500Domains).
type domainNICs struct {
	XMLName xml.Name `xml:"domain"`
	Type    string   `xml:"type,attr"`
	ID      *int     `xml:"id,attr"`
	Name    string   `xml:"name"`
	UUID    string   `xml:"uuid"`
	Devices *struct {
		Interfaces []libvirtxml.DomainInterface `xml:"interface"`
	} `xml:"devices"`
}

// parseDomain reads a domain's live XML (virDomainGetXMLDesc, flags 0) into a
// Domain with the given state. NICs whose key (Target, else Alias, else MAC)
// repeats one already seen are dropped and counted in dups: they would make
// duplicate series.
func parseDomain(doc, state string) (d Domain, dups int, err error) {
	var x domainNICs
	if err := xml.Unmarshal([]byte(doc), &x); err != nil {
		return Domain{}, 0, fmt.Errorf("domain XML: %w", err)
	}
	if x.Name == "" || x.UUID == "" {
		return Domain{}, 0, fmt.Errorf("domain XML without name or uuid")
	}
	d = Domain{Name: x.Name, UUID: strings.ToLower(x.UUID), State: state, Type: x.Type}
	if x.ID != nil && *x.ID > 0 {
		d.ID = *x.ID
	}
	if x.Devices == nil {
		return d, 0, nil
	}
	seen := map[string]bool{}
	for i := range x.Devices.Interfaces {
		n := parseNIC(&x.Devices.Interfaces[i])
		if k := n.Key(); k == "" || seen[k] {
			dups++
			continue
		} else {
			seen[k] = true
		}
		d.NICs = append(d.NICs, n)
	}
	return d, dups, nil
}

// parseNIC reads one <interface>.
func parseNIC(x *libvirtxml.DomainInterface) NIC {
	var n NIC
	if x.MAC != nil {
		n.MAC = strings.ToLower(x.MAC.Address)
	}
	if x.Target != nil {
		n.Target = x.Target.Dev
	}
	if x.Model != nil {
		n.Model = x.Model.Type
	}
	if x.Alias != nil {
		n.Alias = x.Alias.Name
	}
	if s := x.Source; s != nil {
		switch {
		case s.Bridge != nil:
			n.Type, n.Bridge = "bridge", s.Bridge.Bridge
		case s.Network != nil:
			n.Type, n.Network, n.Bridge = "network", s.Network.Network, s.Network.Bridge
		case s.Direct != nil:
			n.Type, n.SourceDev, n.SourceMode = "direct", s.Direct.Dev, s.Direct.Mode
		case s.Ethernet != nil:
			n.Type = "ethernet"
		case s.Hostdev != nil:
			n.Type = "hostdev"
		case s.User != nil:
			n.Type = "user"
		case s.VHostUser != nil:
			n.Type = "vhostuser"
		case s.Internal != nil:
			n.Type = "internal"
		case s.VDPA != nil:
			n.Type = "vdpa"
		case s.MCast != nil:
			n.Type = "mcast"
		case s.Server != nil:
			n.Type = "server"
		case s.Client != nil:
			n.Type = "client"
		case s.UDP != nil:
			n.Type = "udp"
		case s.Null != nil:
			n.Type = "null"
		case s.VDS != nil:
			n.Type = "vds"
		}
	}
	if vp := x.VirtualPort; vp != nil && vp.Params != nil {
		switch p := vp.Params; {
		case p.OpenVSwitch != nil:
			n.VirtualPort, n.InterfaceID = "openvswitch", p.OpenVSwitch.InterfaceID
		case p.MidoNet != nil:
			n.VirtualPort, n.InterfaceID = "midonet", p.MidoNet.InterfaceID
		case p.VEPA8021QBG != nil:
			n.VirtualPort = "802.1Qbg"
		case p.VNTag8011QBH != nil:
			n.VirtualPort = "802.1Qbh"
		case p.Any != nil:
			n.VirtualPort = "any"
			if p.Any.InterfaceID != "" {
				n.InterfaceID = p.Any.InterfaceID
			}
		}
	}
	return n
}

// parseNetwork reads a network's XML (virNetworkGetXMLDesc).
func parseNetwork(doc string, active bool) (Network, error) {
	var x libvirtxml.Network
	if err := x.Unmarshal(doc); err != nil {
		return Network{}, fmt.Errorf("network XML: %w", err)
	}
	if x.Name == "" {
		return Network{}, fmt.Errorf("network XML without name")
	}
	n := Network{Name: x.Name, UUID: strings.ToLower(x.UUID), Active: active, ForwardMode: "isolated"}
	if x.Bridge != nil {
		n.Bridge = x.Bridge.Name
	}
	if x.Forward != nil {
		n.ForwardMode = x.Forward.Mode
		if n.ForwardMode == "" {
			n.ForwardMode = "nat" // libvirt's default for <forward/>
		}
	}
	for _, ip := range x.IPs {
		a, err := netip.ParseAddr(ip.Address)
		if err != nil {
			continue
		}
		bits := int(ip.Prefix)
		if ip.Prefix == 0 && ip.Netmask != "" {
			if m := net.ParseIP(ip.Netmask).To4(); m != nil {
				bits, _ = net.IPMask(m).Size()
			}
		}
		if bits == 0 {
			bits = a.BitLen()
		}
		n.Addresses = append(n.Addresses, netip.PrefixFrom(a, bits).String())
		if ip.DHCP != nil {
			for _, r := range ip.DHCP.Ranges {
				n.DHCPRanges = append(n.DHCPRanges, r.Start+"-"+r.End)
			}
		}
	}
	return n, nil
}
