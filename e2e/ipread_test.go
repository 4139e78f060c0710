package e2e

import (
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// ipKind maps ip's view of a link to nta's kind vocabulary, independently of
// the exporter's code.
func ipKind(l testenv.IPLink) string {
	if l.LinkType == "loopback" {
		return "loopback"
	}
	if l.Linkinfo.InfoKind == "" {
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
func ipLinks(t testing.TB, nsPath string) map[string]testenv.IPLink {
	t.Helper()
	if nsPath == "" {
		return testenv.IPLinks(t)
	}
	return testenv.IPLinks(t, "nsenter", "--net="+nsPath)
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
