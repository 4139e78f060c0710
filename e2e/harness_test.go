// Package e2e runs nta-exporter against the real thing: a real dockerd,
// real namespaces, bridges and veths that the tests create, and compares
// what the exporter says with an independent reading of the same state
// (ip -j -d link, bridge -j link, docker inspect).
//
// The tests need root. Outside CI a missing prerequisite skips; under
// CI=true it fails (testenv.Require).
package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// TestMain removes the exporter binary the tests built.
func TestMain(m *testing.M) { testenv.Main(m) }

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

// jsonOf runs a command and decodes its output, JSON, into v.
func jsonOf(t testing.TB, v any, name string, args ...string) {
	t.Helper()
	if err := json.Unmarshal([]byte(testenv.Run(t, name, args...)), v); err != nil {
		t.Fatalf("%s %v: decode JSON: %v", name, args, err)
	}
}

// promtoolCheckMetrics lints an exposition as Prometheus's promtool does.
func promtoolCheckMetrics(t *testing.T, exposition string) {
	t.Helper()
	testenv.RequireCommand(t, "promtool", "Debian package prometheus")
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
