package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// ModuleRoot returns the directory of nta's go.mod, two directories above
// this package.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// build is the nta-exporter binary ExporterBinary builds once per test
// binary, in a temporary directory dir that Main removes.
var build struct {
	once     sync.Once
	dir, bin string
	err      error
}

// ExporterBinary builds ./cmd/nta-exporter once per test binary (static:
// CGO_ENABLED=0, GOOS=linux, -trimpath) and returns its path. The binary's
// directory is private to root until a test changes its mode. A failed
// build fails every test that asks for the binary.
func ExporterBinary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "nta-test-bin")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "nta-exporter")
		cmd := exec.Command("go", "build", "-trimpath", "-o", build.bin, "./cmd/nta-exporter")
		cmd.Dir = ModuleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/nta-exporter: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// Main runs the tests of m, removes what ExporterBinary built and exits
// with the tests' status. A package whose tests use ExporterBinary calls
// it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// Exporter is a running nta-exporter started by StartExporter.
type Exporter struct {
	*Process
	// Addr is the listen address, host:port.
	Addr string
	// URL is "http://" + Addr.
	URL string

	t testing.TB
}

// StartExporter runs ExporterBinary with --web.listen-address on a free
// loopback port and --log.level=debug, followed by args, and waits up to
// 20 s until /metrics answers 200 OK. It is stopped, and its log shown on
// failure, as Start says.
func StartExporter(t testing.TB, args ...string) *Exporter {
	t.Helper()
	addr := FreeAddr(t)
	args = append([]string{"--web.listen-address=" + addr, "--log.level=debug"}, args...)
	e := &Exporter{Process: Start(t, "nta-exporter", ExporterBinary(t), args...), Addr: addr, URL: "http://" + addr, t: t}
	e.WaitHTTP(t, e.URL+"/metrics", 20*time.Second)
	return e
}

// Raw returns the body of /metrics; a failed scrape fails the test given
// to StartExporter.
func (e *Exporter) Raw() string {
	e.t.Helper()
	body, err := Fetch(e.URL + "/metrics")
	if err != nil {
		e.t.Fatalf("scrape: %v", err)
	}
	return body
}

// Scrape returns the parsed /metrics; a failed scrape fails the test given
// to StartExporter.
func (e *Exporter) Scrape() Metrics {
	e.t.Helper()
	m, err := ParseMetrics(e.Raw())
	if err != nil {
		e.t.Fatalf("parse exposition: %v", err)
	}
	return m
}
