// Package e2e runs nta-exporter against the real thing: a real dockerd,
// real namespaces, bridges and veths that the tests create, and compares
// what the exporter says with an independent reading of the same state
// (ip -j -d link, bridge -j link, docker inspect).
//
// The tests need root. Outside CI a missing prerequisite skips; under
// CI=true it fails.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

func requireRoot(t testing.TB) { require(t, os.Geteuid() == 0, "root") }

func requireDocker(t testing.TB) {
	requireRoot(t)
	_, err := exec.Command("docker", "info").CombinedOutput()
	require(t, err == nil, "a running dockerd (docker info)")
}

// sh runs a command and fails the test on error.
func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stdout runs a command and returns its standard output only.
func stdout(t testing.TB, name string, args ...string) string {
	t.Helper()
	var errb bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return string(out)
}

// shQuiet runs a command ignoring failure (cleanup).
func shQuiet(name string, args ...string) { _ = exec.Command(name, args...).Run() }

func jsonOf(t testing.TB, v any, name string, args ...string) {
	t.Helper()
	if err := json.Unmarshal([]byte(sh(t, name, args...)), v); err != nil {
		t.Fatalf("%s %v: decode JSON: %v", name, args, err)
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// exporterBinary builds cmd/nta-exporter once per test run.
func exporterBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		dir, err := os.MkdirTemp("", "nta-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "nta-exporter")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/nta-exporter")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// exporter is a running nta-exporter process.
type exporter struct {
	t    testing.TB
	url  string
	cmd  *exec.Cmd
	logs *syncBuffer
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

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startExporter runs the binary with args plus a free listen address and
// waits until /metrics answers.
func startExporter(t testing.TB, args ...string) *exporter {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e := &exporter{t: t, url: "http://" + addr, logs: &syncBuffer{}}
	e.cmd = exec.Command(exporterBinary(t), append([]string{"--web.listen-address=" + addr, "--log.level=debug"}, args...)...)
	e.cmd.Stdout, e.cmd.Stderr = e.logs, e.logs
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = e.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = e.cmd.Process.Kill()
			t.Errorf("exporter did not stop within 10s of SIGINT")
		}
		if t.Failed() {
			t.Logf("exporter logs:\n%s", e.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(e.url + "/metrics"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return e
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("exporter did not serve /metrics within 20s; logs:\n%s", e.logs.String())
	return nil
}

// raw returns the /metrics body.
func (e *exporter) raw() string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("scrape: status %d err %v: %s", resp.StatusCode, err, b)
	}
	return string(b)
}

// scrape returns parsed metric families.
func (e *exporter) scrape() metrics {
	e.t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(e.raw()))
	if err != nil {
		e.t.Fatalf("parse exposition: %v", err)
	}
	return metrics(fams)
}

// metrics wraps parsed families with lookups.
type metrics map[string]*dto.MetricFamily

// series is one sample: labels and value.
type series struct {
	labels map[string]string
	value  float64
}

// all returns the samples of family name whose labels include match.
func (m metrics) all(name string, match map[string]string) []series {
	f := m[name]
	if f == nil {
		return nil
	}
	var out []series
	for _, mt := range f.GetMetric() {
		ls := map[string]string{}
		for _, lp := range mt.GetLabel() {
			ls[lp.GetName()] = lp.GetValue()
		}
		ok := true
		for k, v := range match {
			if ls[k] != v {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		v := mt.GetGauge().GetValue()
		if mt.GetCounter() != nil {
			v = mt.GetCounter().GetValue()
		}
		out = append(out, series{labels: ls, value: v})
	}
	return out
}

// one returns the single sample matching, failing otherwise.
func (m metrics) one(t testing.TB, name string, match map[string]string) series {
	t.Helper()
	s := m.all(name, match)
	if len(s) != 1 {
		t.Fatalf("%s%v: want exactly 1 series, got %d: %v", name, match, len(s), s)
	}
	return s[0]
}

// eventually retries f until it returns "" or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if last = f(); last == "" {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("not true within %v: %s", timeout, last)
}
