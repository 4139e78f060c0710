// Command gen writes nta's Grafana dashboards as JSON, built with the
// Grafana Foundation SDK, so that the dashboards are reviewed as code and
// the committed JSON is only an output:
//
//	go run ./dashboards/gen            # writes dashboards/*.json
//	go run ./dashboards/gen -out DIR   # somewhere else
//
// A test in this package fails when the committed files differ from what
// the generator produces, so they never drift.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// builders maps each output file name to the dashboard it holds.
func builders() map[string]*dashboard.DashboardBuilder {
	return map[string]*dashboard.DashboardBuilder{
		"nta-topology.json": topologyDashboard(),
		"nta-traffic.json":  trafficDashboard(),
	}
}

// render builds every dashboard and returns its JSON (two-space indent,
// trailing newline) by file name.
func render() (map[string][]byte, error) {
	out := make(map[string][]byte)
	for name, b := range builders() {
		d, err := b.Build()
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", name, err)
		}
		numberPanels(&d)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // keep => and <, > readable in PromQL
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("encode %s: %w", name, err)
		}
		out[name] = buf.Bytes()
	}
	return out, nil
}

// numberPanels gives every panel and row a unique id in layout order (the
// SDK leaves them unset or 0; Grafana needs them unique for links and
// "view panel").
func numberPanels(d *dashboard.Dashboard) {
	var id uint32
	for i := range d.Panels {
		id++
		p := &d.Panels[i]
		switch {
		case p.Panel != nil:
			v := id
			p.Panel.Id = &v
		case p.RowPanel != nil:
			p.RowPanel.Id = id
			for j := range p.RowPanel.Panels {
				id++
				v := id
				p.RowPanel.Panels[j].Id = &v
			}
		}
	}
}

// names returns the keys of m, sorted.
func names(m map[string][]byte) []string { return slices.Sorted(maps.Keys(m)) }

func main() {
	dir := flag.String("out", "dashboards", "directory to write the dashboard JSON files to")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	files, err := render()
	if err != nil {
		logger.Error("generating dashboards failed", "err", err)
		os.Exit(1)
	}
	for _, name := range names(files) {
		path := filepath.Join(*dir, name)
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			logger.Error("writing dashboard failed — run from the repository root or pass -out", "path", path, "err", err)
			os.Exit(1)
		}
		logger.Info("wrote dashboard", "path", path)
	}
}
