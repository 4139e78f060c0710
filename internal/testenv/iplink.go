package testenv

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// iproute2's JSON output (`ip -j`, `bridge -j`): an independent reading of
// the host's links that tests compare the exporter and package hostnet
// against. Only the fields some test compares are decoded.

// IPLink is one entry of `ip -j -d -s link show`.
type IPLink struct {
	Ifindex   int    `json:"ifindex"`
	Ifname    string `json:"ifname"`
	MTU       int    `json:"mtu"`
	Operstate string `json:"operstate"` // upper case: "UP", "LOWERLAYERDOWN"
	LinkType  string `json:"link_type"` // "ether", "loopback", "none"
	Address   string `json:"address"`   // also printed when all zero
	Master    string `json:"master"`
	// Link names the lower device (a veth's peer, a VLAN's parent) when it is
	// in the same namespace. When it is in another one, LinkIndex is its
	// index there and LinkNetnsid that namespace's id as seen from here.
	Link        string     `json:"link"`
	LinkIndex   int        `json:"link_index"`
	LinkNetnsid *int       `json:"link_netnsid"`
	Linkinfo    IPLinkInfo `json:"linkinfo"`
	Stats64     struct {
		Rx IPCounters `json:"rx"`
		Tx IPCounters `json:"tx"`
	} `json:"stats64"`
}

// IPLinkInfo is the "linkinfo" object of `ip -d`; empty for a physical
// device and for lo.
type IPLinkInfo struct {
	InfoKind      string         `json:"info_kind"` // "veth", "bridge", "tun", ...
	InfoData      map[string]any `json:"info_data"`
	InfoSlaveKind string         `json:"info_slave_kind"` // kind of the master of a port: "bridge", "bond"
}

// IPCounters is one direction of `ip -s`'s "stats64".
type IPCounters struct {
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
	Errors  uint64 `json:"errors"`
	Dropped uint64 `json:"dropped"`
}

// BridgePort is one entry of `bridge -j link show`.
type BridgePort struct {
	Ifname string `json:"ifname"`
	Master string `json:"master"`
	State  string `json:"state"` // STP state: "forwarding", "blocking", ...
}

// IPLinks reads the links of a namespace with `ip -j -d -s link show`, keyed
// by name. The command runs after the prefix enter: none for the test's own
// namespace, or one that enters another ("ip", "netns", "exec", NAME;
// "nsenter", "--net="+PATH; "nsenter", "-t", PID, "-n"). A failing command
// or output that does not decode fails t.
func IPLinks(t testing.TB, enter ...string) map[string]IPLink {
	t.Helper()
	var links []IPLink
	decodeJSON(t, &links, enter, "ip", "-j", "-d", "-s", "link", "show")
	out := make(map[string]IPLink, len(links))
	for _, l := range links {
		out[l.Ifname] = l
	}
	return out
}

// BridgePorts reads the bridge ports of a namespace with `bridge -j link
// show`; enter is as for IPLinks.
func BridgePorts(t testing.TB, enter ...string) []BridgePort {
	t.Helper()
	var ports []BridgePort
	decodeJSON(t, &ports, enter, "bridge", "-j", "link", "show")
	return ports
}

// decodeJSON runs the command enter+args and decodes its standard output
// into v; empty output counts as an empty list. Standard error is kept out
// of the JSON and shown on failure.
func decodeJSON(t testing.TB, v any, enter []string, args ...string) {
	t.Helper()
	argv := append(append([]string{}, enter...), args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	out := bytes.TrimSpace(stdout.Bytes())
	if len(out) == 0 {
		out = []byte("[]")
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("%s: decode JSON: %v", strings.Join(argv, " "), err)
	}
}
