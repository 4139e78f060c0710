package flowagg

import (
	"fmt"

	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// Granularity selects how much of the 5-tuple a flow key keeps, which sets
// the number of series a busy interface can produce (always capped by the
// budget; the granularity decides how soon the budget is reached).
type Granularity uint8

const (
	// GranularityFull keeps the full 5-tuple. Series: up to one per
	// connection and direction, i.e. (client ports × connections); a port
	// scan or a busy HTTP client reaches the budget in seconds.
	GranularityFull Granularity = iota
	// GranularityHostPair drops the ports: one series per (src, dst, proto,
	// direction). Series: communicating host pairs × protocols × 2.
	GranularityHostPair
	// GranularityWorkloadPair keeps host pairs in the table and merges them
	// at export time by the names the Resolver gives (unresolved addresses
	// stay addresses). Series: workload pairs × protocols × 2, plus host pairs
	// with outside addresses.
	GranularityWorkloadPair
	// GranularityServerPort folds the ephemeral (client) port and keeps the
	// service port: one series per (src, dst, service port, proto,
	// direction). Series: client-server host pairs × services × 2.
	GranularityServerPort
)

// String returns the flag value of the granularity.
func (g Granularity) String() string {
	switch g {
	case GranularityHostPair:
		return "host"
	case GranularityWorkloadPair:
		return "workload"
	case GranularityServerPort:
		return "port"
	}
	return "5tuple"
}

// ParseGranularity parses a flag value: "5tuple" (or "full"), "host",
// "workload" or "port".
func ParseGranularity(s string) (Granularity, error) {
	switch s {
	case "5tuple", "full":
		return GranularityFull, nil
	case "host":
		return GranularityHostPair, nil
	case "workload":
		return GranularityWorkloadPair, nil
	case "port":
		return GranularityServerPort, nil
	}
	return 0, fmt.Errorf("flow granularity %q: use one of 5tuple, host, workload, port", s)
}

// HasPortLabels reports whether series of this granularity carry the
// src_port and dst_port labels.
func (g Granularity) HasPortLabels() bool {
	return g == GranularityFull || g == GranularityServerPort
}

// apply folds a decoded key to the granularity, in place.
func (g Granularity) apply(k *decoder.FlowKey) {
	switch g {
	case GranularityHostPair, GranularityWorkloadPair:
		k.SrcPort, k.DstPort = 0, 0
	case GranularityServerPort:
		if !decoder.HasPorts(k.Proto) {
			return // ICMP type/code and port-less protocols stay as they are
		}
		if serverIsSrc(k.SrcPort, k.DstPort) {
			k.DstPort = 0
			k.Flags |= decoder.FlagDstPortFolded
		} else {
			k.SrcPort = 0
			k.Flags |= decoder.FlagSrcPortFolded
		}
	}
}

// ephemeralLow is the start of the Linux default ephemeral port range
// (net.ipv4.ip_local_port_range = 32768 60999); the IANA range 49152-65535
// used by other systems lies inside it.
const ephemeralLow = 32768

// serverIsSrc guesses which side of a connection is the server: the side
// whose port is outside the ephemeral range when exactly one is, otherwise
// the lower port.
func serverIsSrc(sport, dport uint16) bool {
	se, de := sport >= ephemeralLow, dport >= ephemeralLow
	if se != de {
		return de
	}
	return sport <= dport
}
