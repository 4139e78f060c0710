package e2e

import (
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// ipLink is the part of `ip -j -d link` the tests compare.
type ipLink struct {
	Ifindex     int    `json:"ifindex"`
	Ifname      string `json:"ifname"`
	Flags       []string
	MTU         int    `json:"mtu"`
	Operstate   string `json:"operstate"`
	LinkType    string `json:"link_type"`
	Address     string `json:"address"`
	Master      string `json:"master"`
	Link        string `json:"link"`
	LinkIndex   int    `json:"link_index"`
	LinkNetnsid *int   `json:"link_netnsid"`
	Linkinfo    *struct {
		InfoKind      string         `json:"info_kind"`
		InfoData      map[string]any `json:"info_data"`
		InfoSlaveKind string         `json:"info_slave_kind"`
		InfoSlaveData map[string]any `json:"info_slave_data"`
	} `json:"linkinfo"`
}

// kind maps ip's view of a link to nta's kind vocabulary, independently of
// the exporter's code.
func (l ipLink) kind() string {
	if l.LinkType == "loopback" {
		return "loopback"
	}
	if l.Linkinfo == nil || l.Linkinfo.InfoKind == "" {
		return "physical"
	}
	switch k := l.Linkinfo.InfoKind; k {
	case "tun":
		if t, _ := l.Linkinfo.InfoData["type"].(string); t == "tap" {
			return "tap"
		}
		return "tun"
	case "macvtap":
		return "macvlan"
	default:
		return k
	}
}

// ipLinks reads links in a namespace: nsPath "" = host, else a netns file.
func ipLinks(t testing.TB, nsPath string) map[string]ipLink {
	t.Helper()
	var links []ipLink
	if nsPath == "" {
		jsonOf(t, &links, "ip", "-j", "-d", "link", "show")
	} else {
		jsonOf(t, &links, "nsenter", "--net="+nsPath, "ip", "-j", "-d", "link", "show")
	}
	out := map[string]ipLink{}
	for _, l := range links {
		out[l.Ifname] = l
	}
	return out
}

// bridgePort is one row of `bridge -j link`.
type bridgePort struct {
	Ifname string `json:"ifname"`
	Master string `json:"master"`
	State  string `json:"state"`
}

func bridgePorts(t testing.TB) []bridgePort {
	var ports []bridgePort
	jsonOf(t, &ports, "bridge", "-j", "link", "show")
	return ports
}

// netnsIDs maps nsid (as the host sees it) → name of named namespaces.
func netnsIDs(t testing.TB) map[int]string {
	var rows []struct {
		Nsid int    `json:"nsid"`
		Name string `json:"name"`
	}
	out := strings.TrimSpace(testenv.Run(t, "ip", "-j", "netns", "list-id"))
	if out == "" {
		return map[int]string{}
	}
	jsonOf(t, &rows, "ip", "-j", "netns", "list-id")
	m := map[int]string{}
	for _, r := range rows {
		m[r.Nsid] = r.Name
	}
	return m
}

// operstate maps ip's upper-case state to the kernel's lower-case name.
func operstate(s string) string { return strings.ToLower(s) }
