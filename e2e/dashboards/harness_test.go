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
// prerequisite skips; with CI=true it fails (scripts/lab-up.sh installs
// everything).
package dashboards

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// require fails under CI and skips elsewhere when a prerequisite is missing.
func require(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("prerequisite missing under CI: %s (run scripts/lab-up.sh)", what)
	}
	t.Skipf("prerequisite missing: %s (run scripts/lab-up.sh as root)", what)
}

// repoRoot is the module root, two directories above this file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// sh runs a command and fails the test on error.
func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// shQuiet runs a command ignoring failure (cleanup).
func shQuiet(name string, args ...string) { _ = exec.Command(name, args...).Run() }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// process is a started child whose output is kept for failure messages.
type process struct {
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// start runs bin with args; t.Cleanup stops it with SIGTERM (SIGKILL after 10 s).
func start(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s output (tail) ---\n%s", name, tail(p.logs.String(), 3000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// waitHTTP polls url until it answers 200 or the process exits.
func (p *process) waitHTTP(t *testing.T, u string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited early:\n%s", p.name, tail(p.logs.String(), 3000))
		default:
		}
		resp, err := http.Get(u)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %s within %v:\n%s", p.name, u, within, tail(p.logs.String(), 3000))
}

// buildExporter compiles cmd/nta-exporter into a temporary directory.
func buildExporter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nta-exporter")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/nta-exporter")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/nta-exporter: %v\n%s", err, out)
	}
	return bin
}

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
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := start(t, "prometheus", "prometheus",
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	base := "http://" + addr
	p.waitHTTP(t, base+"/-/ready", 30*time.Second)
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

// waitFor polls cond every 250 ms until it is true or within elapses.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
