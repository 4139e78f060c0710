package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// TestCommittedJSONMatchesGenerator fails when dashboards/*.json differ from
// what the generator produces: edit the Go code, then `go run ./dashboards/gen`.
func TestCommittedJSONMatchesGenerator(t *testing.T) {
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names(files) {
		committed, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Errorf("%s: %v — run `go run ./dashboards/gen` from the repository root", name, err)
			continue
		}
		if !bytes.Equal(committed, files[name]) {
			t.Errorf("dashboards/%s differs from the generator's output — run `go run ./dashboards/gen` from the repository root and commit the result", name)
		}
	}
	// No stray dashboard that the generator does not own.
	stray, _ := filepath.Glob(filepath.Join("..", "*.json"))
	for _, p := range stray {
		if _, ok := files[filepath.Base(p)]; !ok {
			t.Errorf("%s is not produced by the generator: delete it or generate it", p)
		}
	}
}

// TestDashboardsDecodeWithSDK reads the output back with the SDK's strict
// decoder, which rejects unknown or mistyped fields for every panel type.
func TestDashboardsDecodeWithSDK(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names(files) {
		var d dashboard.Dashboard
		// The SDK returns a typed nil cog.BuildErrors on success.
		if err := d.UnmarshalJSONStrict(files[name]); err != nil {
			if be, ok := err.(cog.BuildErrors); !ok || len(be) > 0 {
				t.Errorf("%s: strict decode: %v", name, err)
			}
		}
	}
}

type target struct {
	RefID      string          `json:"refId"`
	Expr       string          `json:"expr"`
	Format     string          `json:"format"`
	Instant    bool            `json:"instant"`
	Datasource json.RawMessage `json:"datasource"`
}

type panel struct {
	ID              int      `json:"id"`
	Type            string   `json:"type"`
	Title           string   `json:"title"`
	Targets         []target `json:"targets"`
	Transformations []struct {
		ID     string `json:"id"`
		Filter *struct {
			ID      string `json:"id"`
			Options string `json:"options"`
		} `json:"filter"`
		Options struct {
			ByField       string            `json:"byField"`
			RenameByName  map[string]string `json:"renameByName"`
			ExcludeByName map[string]bool   `json:"excludeByName"`
		} `json:"options"`
	} `json:"transformations"`
}

func decodePanels(t *testing.T, raw []byte) []panel {
	t.Helper()
	var d struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d.Panels
}

// TestQueriesAreScopedAndAddressed checks what Grafana itself would not:
// every query names the datasource variable and filters on $instance, and
// panel ids are unique.
func TestQueriesAreScopedAndAddressed(t *testing.T) {
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names(files) {
		ids := map[int]bool{}
		for _, p := range decodePanels(t, files[name]) {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("%s: panel %q has id %d, not unique", name, p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", name, p.Title)
			}
			for _, tg := range p.Targets {
				if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
					t.Errorf("%s: panel %q query %s does not filter on $instance: %s", name, p.Title, tg.RefID, tg.Expr)
				}
				if !strings.Contains(string(tg.Datasource), "${datasource}") {
					t.Errorf("%s: panel %q query %s does not use ${datasource}", name, p.Title, tg.RefID)
				}
			}
		}
	}
}

// TestNodeGraphQueries pins the contract with Grafana's Node Graph panel
// that dashboards/README.md documents: the nodes and edges queries, one
// instant table query per statistic whose frame a byRefId-filtered join on
// id puts into the nodes or edges frame, and a rename of each statistic's
// value column ("Value #refId") to a field name the panel reads.
func TestNodeGraphQueries(t *testing.T) {
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	fieldNames := regexp.MustCompile(`^(mainstat|secondarystat|arc__[a-z_]+|detail__[a-z_]+|color)$`)
	var found bool
	for _, p := range decodePanels(t, files["nta-topology.json"]) {
		if p.Type != "nodeGraph" {
			continue
		}
		found = true
		rename, hidden := map[string]string{}, map[string]bool{}
		joins := map[string]string{} // filter pattern → byField
		for _, tr := range p.Transformations {
			switch tr.ID {
			case "organize":
				rename, hidden = tr.Options.RenameByName, tr.Options.ExcludeByName
			case "joinByField":
				if tr.Filter == nil || tr.Filter.ID != "byRefId" {
					t.Errorf("join without a byRefId filter would merge nodes and edges: %+v", tr)
					continue
				}
				joins[tr.Filter.Options] = tr.Options.ByField
			}
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			refIDs[tg.RefID] = true
			if !tg.Instant || tg.Format != "table" {
				t.Errorf("node graph query %s: want instant, table format", tg.RefID)
			}
			switch {
			case tg.RefID == "nodes" && !strings.HasPrefix(tg.Expr, "nta_node_info{"):
				t.Errorf("nodes query %q", tg.Expr)
			case tg.RefID == "edges" && !strings.HasPrefix(tg.Expr, "nta_edge_info{"):
				t.Errorf("edges query %q", tg.Expr)
			case tg.RefID == "nodes" || tg.RefID == "edges":
			default:
				frame, _, _ := strings.Cut(tg.RefID, "_")
				if frame != "nodes" && frame != "edges" {
					t.Errorf("statistic query %s belongs to neither frame", tg.RefID)
				}
				label := strings.HasPrefix(tg.RefID, "nodes_detail_") || tg.RefID == "nodes_icon" // its labels are the fields
				if f := rename["Value #"+tg.RefID]; !label && !fieldNames.MatchString(f) {
					t.Errorf("query %s: its value column is renamed to %q, not a Node Graph field", tg.RefID, f)
				}
				if label && !hidden["Value #"+tg.RefID] {
					t.Errorf("query %s: its value column is not hidden", tg.RefID)
				}
				if joins["/^"+frame+"/"] != "id" {
					t.Errorf("query %s: no join on id filtered to /^%s/ (joins %v)", tg.RefID, frame, joins)
				}
			}
		}
		if !refIDs["nodes"] || !refIDs["edges"] {
			t.Errorf("node graph queries %v: want nodes and edges", refIDs)
		}
	}
	if !found {
		t.Fatal("topology dashboard has no nodeGraph panel")
	}
}

// TestNodeGraphLinksOpenTheTrafficDashboard: a node's data link sets
// variables the traffic dashboard has, and those filter its panels.
func TestNodeGraphLinksOpenTheTrafficDashboard(t *testing.T) {
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	var traffic struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(files["nta-traffic.json"], &traffic); err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, v := range traffic.Templating.List {
		vars[v.Name] = true
	}
	var topo struct {
		Panels []struct {
			Type        string `json:"type"`
			FieldConfig struct {
				Overrides []struct {
					Matcher struct {
						ID      string `json:"id"`
						Options string `json:"options"`
					} `json:"matcher"`
					Properties []struct {
						ID    string `json:"id"`
						Value []struct {
							Title, URL string
						} `json:"value"`
					} `json:"properties"`
				} `json:"overrides"`
			} `json:"fieldConfig"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(files["nta-topology.json"], &topo); err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, p := range topo.Panels {
		if p.Type != "nodeGraph" {
			continue
		}
		for _, o := range p.FieldConfig.Overrides {
			for _, pr := range o.Properties {
				if pr.ID == "links" && o.Matcher.Options == "id" {
					for _, l := range pr.Value {
						urls = append(urls, l.URL)
					}
				}
			}
		}
	}
	if len(urls) == 0 {
		t.Fatal("the node graph's id field has no data link")
	}
	setVar := regexp.MustCompile(`var-([a-z_]+)=`)
	for _, u := range urls {
		if !strings.HasPrefix(u, "/d/"+traffic.UID+"/") {
			t.Errorf("link %s does not open the traffic dashboard (uid %s)", u, traffic.UID)
		}
		for _, m := range setVar.FindAllStringSubmatch(u, -1) {
			if !vars[m[1]] {
				t.Errorf("link %s sets var-%s, which the traffic dashboard does not have", u, m[1])
			}
			if m[1] != "instance" && !strings.Contains(string(files["nta-traffic.json"]), `=~\"$`+m[1]+`\"`) {
				t.Errorf("no traffic panel filters on $%s", m[1])
			}
		}
	}
}
