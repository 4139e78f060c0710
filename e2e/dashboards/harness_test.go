// Package dashboards checks nta's Grafana dashboards and Prometheus alert
// rules against the real thing: it builds and runs nta-exporter as root,
// runs a real Prometheus scraping it every second with the rules loaded,
// builds a small topology (a named namespace with a bridge and a veth pair
// to the host, and, when dockerd is there, two containers exchanging
// traffic), then sends every PromQL expression of dashboards/*.json and
// deploy/rules/nta-alerts.yml through Prometheus' HTTP API.
//
// Grafana is not available on the test machines; its part, turning panel
// queries into data frames, is what these queries feed.
//
// The tests need root and the prometheus binary. Outside CI a missing
// prerequisite skips; with CI=true it fails (testenv.Require;
// scripts/lab-up.sh installs everything).
package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// TestMain removes the exporter binary the tests built.
func TestMain(m *testing.M) { testenv.Main(m) }

// startPrometheus writes a configuration scraping target every second with
// the rules loaded, and starts prometheus on a free loopback port.
func startPrometheus(t *testing.T, target, rules string) *promAPI {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: nta
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	p := testenv.Start(t, "prometheus", "prometheus",
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	base := "http://" + addr
	p.WaitHTTP(t, base+"/-/ready", 30*time.Second)
	return &promAPI{base: base}
}

// promAPI is a minimal client of Prometheus' HTTP API.
type promAPI struct{ base string }

type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// queryResult is the answer to an instant query.
type queryResult struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// get calls path with params and decodes data into v; it returns the API's
// error (bad expression, execution error) as an error.
func (a *promAPI) get(ctx context.Context, path string, params url.Values, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("HTTP %d, undecodable body: %w", resp.StatusCode, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(r.Data, v)
}

// query runs an instant query and returns its vector (nil for a scalar or
// string result).
func (a *promAPI) query(t *testing.T, expr string) ([]sample, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var qr queryResult
	if err := a.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &qr); err != nil {
		return nil, err
	}
	if qr.ResultType != "vector" {
		return nil, nil
	}
	var v []sample
	return v, json.Unmarshal(qr.Result, &v)
}

// oneSeries returns nil when the instant query expr answers exactly one
// series, and an error saying what it got otherwise: the condition the
// tests wait for with testenv.Eventually.
func (a *promAPI) oneSeries(t *testing.T, expr string) error {
	t.Helper()
	v, err := a.query(t, expr)
	if err != nil {
		return err
	}
	if len(v) != 1 {
		return fmt.Errorf("%s: %d series, want 1", expr, len(v))
	}
	return nil
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
