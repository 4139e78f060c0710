package e2e

import (
	"encoding/json"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
	"github.com/tangfeixiong/nta/topoweb"
)

// pageLab is the seed notes' lab with names of its own (ntpg<id>…), so that
// it never collides with another test on this machine:
//
//	docker0: <id>-web (publishes 80 on a random 127.0.0.1 port)
//	<id>-net (198.18.N.0/24, user-defined bridge): <id>-db, <id>-cli
//	ntpg<id>b0 ==veth ntpg<id>v0/ntpg<id>v1== ntpg<id>b1
//	VM ntlve<id>-pg on the libvirt network of newVMLab
type pageLab struct {
	id               string
	web, db, cli     string
	net, subnet      string
	br0, br1, v0, v1 string
	vm               *vm
}

func newPageLab(t *testing.T) *pageLab {
	t.Helper()
	testenv.RequireRoot(t)
	testimage.RequireDocker(t)
	image := testimage.Ensure(t)
	id := testenv.RandHex(2)
	l := &pageLab{id: id, br0: "ntpg" + id + "b0", br1: "ntpg" + id + "b1", v0: "ntpg" + id + "v0", v1: "ntpg" + id + "v1"}
	t.Cleanup(func() {
		testenv.RunQuiet("ip", "link", "del", l.v0)
		testenv.RunQuiet("ip", "link", "del", l.br0)
		testenv.RunQuiet("ip", "link", "del", l.br1)
	})
	testenv.Run(t, "ip", "link", "add", l.br0, "type", "bridge")
	testenv.Run(t, "ip", "link", "add", l.br1, "type", "bridge")
	testenv.Run(t, "ip", "link", "add", l.v0, "type", "veth", "peer", "name", l.v1)
	testenv.Run(t, "ip", "link", "set", l.v0, "master", l.br0)
	testenv.Run(t, "ip", "link", "set", l.v1, "master", l.br1)
	for _, dev := range []string{l.br0, l.br1, l.v0, l.v1} {
		testenv.Run(t, "ip", "link", "set", dev, "up")
	}
	l.net, l.subnet = testNetwork(t, "ntpg"+id)
	l.web = testimage.RunContainer(t, "ntpg"+id+"-web", "-p", "127.0.0.1::80", image)
	l.db = testimage.RunContainer(t, "ntpg"+id+"-db", "--network", l.net, image)
	l.cli = testimage.RunContainer(t, "ntpg"+id+"-cli", "--network", l.net, image, "-sleep")
	vl := newVMLab(t)
	l.vm = vl.createVM(t, "pg", vl.networkNIC())
	return l
}

// testNetwork creates a user-defined Docker bridge network on a free /24
// of the benchmarking range 198.18.0.0/15, removed in t.Cleanup.
func testNetwork(t *testing.T, prefix string) (name, subnet string) {
	t.Helper()
	name = testimage.UniqueName(prefix)
	var lastErr error
	for range 20 {
		third, _ := strconv.ParseUint(testenv.RandHex(1), 16, 8)
		subnet = fmt.Sprintf("198.18.%d.0/24", third)
		_, err := testimage.DockerErr("network", "create", "--driver", "bridge", "--subnet", subnet, name)
		if err == nil {
			t.Cleanup(func() { _, _ = testimage.DockerErr("network", "rm", name) })
			return name, subnet
		}
		if lastErr = err; !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	t.Fatalf("create test network in 198.18.0.0/15: %v", lastErr)
	return "", ""
}

// chromium returns the headless browser, required (Debian package chromium,
// installed by scripts/lab-up.sh).
func chromium(t *testing.T) string {
	t.Helper()
	testenv.RequireCommand(t, "chromium", "Debian package chromium (scripts/lab-up.sh installs it)")
	p, _ := exec.LookPath("chromium")
	return p
}

// browse runs headless Chromium on url with a virtual time budget, so the
// page's polls run, and returns its standard output.
func browse(t *testing.T, bin, url string, budget time.Duration, extra ...string) string {
	t.Helper()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1600,1000",
		"--virtual-time-budget=" + strconv.Itoa(int(budget.Milliseconds()))}, extra...)
	cmd := exec.Command(bin, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, testenv.Tail(stderr.String(), 20))
	}
	return string(out)
}

var (
	gTag    = regexp.MustCompile(`<g\b[^>]*>`)
	attr    = regexp.MustCompile(`\b(data-ids?|class)="([^"]*)"`)
	bodyTag = regexp.MustCompile(`<body\b[^>]*>`)
)

// drawnIDs returns the data-id of every node and edge group in a dumped DOM
// (of a node, every id of its data-ids: the nodes drawn in its box).
func drawnIDs(dom string) (nodes, edges map[string]string) {
	nodes, edges = map[string]string{}, map[string]string{}
	for _, tag := range gTag.FindAllString(dom, -1) {
		var ids []string
		var class string
		for _, a := range attr.FindAllStringSubmatch(tag, -1) {
			switch a[1] {
			case "data-id":
				if ids == nil {
					ids = []string{html.UnescapeString(a[2])}
				}
			case "data-ids": // a JSON array
				ids = nil
				if err := json.Unmarshal([]byte(html.UnescapeString(a[2])), &ids); err != nil {
					ids = []string{"malformed data-ids: " + a[2]}
				}
			default:
				class = a[2]
			}
		}
		for _, id := range ids {
			switch f := strings.Fields(class); {
			case len(f) > 0 && f[0] == "node":
				nodes[id] = class
			case len(f) > 0 && f[0] == "edge":
				edges[id] = class
			}
		}
	}
	return nodes, edges
}

func nodeIDs(m testenv.Metrics) map[string]bool {
	out := map[string]bool{}
	for _, s := range m.All("nta_node_info", nil) {
		out[s.Labels["id"]] = true
	}
	return out
}

// TestTopologyPageDrawsEveryNodeInABrowser loads /topology in headless
// Chromium from an exporter on the lab while a container sends to another:
// every node of nta_node_info is drawn (data-id), the page reported no
// error, it painted more than once, and the sender's veth shows traffic.
// The screenshot is kept in $NTA_SCREENSHOT_DIR (else the test's temp dir).
func TestTopologyPageDrawsEveryNodeInABrowser(t *testing.T) {
	bin := chromium(t)
	l := newPageLab(t)
	e := testenv.StartExporter(t, "--collector.libvirt.uri="+libvirtURI)

	// The lab's objects as nta sees them, and the client's veth edge.
	_, cliNS := sandbox(t, l.cli)
	cliIf := "if:" + cliNS + "/eth0"
	var vethEdge string
	testenv.Eventually(t, "the lab in nta_node_info", 30*time.Second, func() error {
		m := e.Scrape()
		ids := nodeIDs(m)
		for _, want := range []string{cliIf, "if:host/" + l.br0, "if:host/" + l.v1, "vm:" + l.vm.uuid} {
			if !ids[want] {
				return fmt.Errorf("node %s not in nta_node_info", want)
			}
		}
		for _, s := range m.All("nta_edge_info", map[string]string{"kind": "veth"}) {
			if s.Labels["source"] == cliIf || s.Labels["target"] == cliIf {
				vethEdge = s.Labels["id"]
			}
		}
		if vethEdge == "" {
			return fmt.Errorf("no veth edge at %s", cliIf)
		}
		return nil
	})

	// Traffic the page must show: cli → db over the user-defined network,
	// bounded in count, for longer than the page is open.
	dbIP := strings.TrimSpace(testenv.Run(t, "docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", l.db))
	testenv.Run(t, "docker", "exec", "-d", l.cli, "/app", "-send", dbIP+":80", "-bytes", "5000", "-count", "20000")
	// The exporter computes rates between host scans seconds apart in real
	// time; the browser's virtual clock runs its polls within a second. So
	// wait, as an operator's page would, until the data says so itself.
	testenv.Eventually(t, "traffic on the client's veth in "+topoweb.DataPath, 30*time.Second, func() error {
		var d topoweb.Data
		body, err := testenv.Fetch(e.URL + topoweb.DataPath)
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			return err
		}
		for _, ed := range d.Edges {
			if ed.ID == vethEdge {
				if ed.Traffic == nil || ed.Traffic.BytesPerSecond <= 0 {
					return fmt.Errorf("edge %s: traffic %+v", ed.ID, ed.Traffic)
				}
				return nil
			}
		}
		return fmt.Errorf("edge %s not in the data", vethEdge)
	})

	before := nodeIDs(e.Scrape())
	dom := browse(t, bin, e.URL+"/topology", 20*time.Second, "--dump-dom")
	after := nodeIDs(e.Scrape())

	body := bodyTag.FindString(dom)
	if !strings.Contains(body, `data-errors="0"`) {
		errs := regexp.MustCompile(`(?s)<ul id="errors"[^>]*>.*?</ul>`).FindString(dom)
		t.Errorf("the page reported errors: %s\n%s", body, errs)
	}
	polls := regexp.MustCompile(`data-polls="(\d+)"`).FindStringSubmatch(body)
	if n, _ := strconv.Atoi(polls[len(polls)-1]); polls == nil || n < 2 {
		t.Errorf("the page painted %v times, want at least 2 (rates need two readings): %s", polls, body)
	}
	nodes, edges := drawnIDs(dom)
	missing := 0
	for id := range before {
		if after[id] && nodes[id] == "" { // a node of another test may come or go meanwhile
			t.Errorf("node %s of nta_node_info not drawn", id)
			missing++
		}
	}
	if len(before) < 10 || missing > 0 {
		t.Logf("%d nodes in nta_node_info, %d drawn", len(before), len(nodes))
	}
	if _, ok := edges[vethEdge]; !ok {
		t.Fatalf("the client's veth %s not drawn", vethEdge)
	}
	rate := regexp.MustCompile(`(?s)data-id="` + regexp.QuoteMeta(html.EscapeString(vethEdge)) + `"[^>]*>.*?<text class="rate"[^>]*>([^<]*)</text>`).FindStringSubmatch(dom)
	if rate == nil || !regexp.MustCompile(`^[\d.]+ [kMG]?B/s$`).MatchString(rate[1]) {
		t.Errorf("the sending container's veth %s shows no traffic: %v", vethEdge, rate)
	}

	dir := os.Getenv("NTA_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "topology.png")
	browse(t, bin, e.URL+"/topology", 20*time.Second, "--screenshot="+shot)
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}
