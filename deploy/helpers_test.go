// Package deploy holds no Go code, only nta's deployment files
// (Dockerfile, docker-compose.yml, Grafana provisioning, Kubernetes
// manifests, Prometheus rules) and these tests. They parse the files and
// check that they agree with each other, with the repository and with the
// exporter's real flags, run promtool over the rules, and run the exporter
// in a container with docker-compose.yml's settings (docker compose itself
// and the base images are not available on the test machines).
package deploy

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v2"

	"github.com/tangfeixiong/nta/internal/testenv"
)

func decodeFile(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func mustExist(t *testing.T, what, p string) {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// flagValue returns the value of --name=value in args.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// TestMain removes the exporter binary the tests built.
func TestMain(m *testing.M) { testenv.Main(m) }

// exporterHelp returns the exporter's --help output.
func exporterHelp(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(testenv.ExporterBinary(t), "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("nta-exporter --help: %v\n%s", err, out)
	}
	return string(out)
}

// checkFlags fails for every --flag in args that the exporter does not have.
func checkFlags(t *testing.T, where string, args []string) {
	t.Helper()
	help := exporterHelp(t)
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") {
			t.Errorf("%s: argument %q is not a flag", where, a)
			continue
		}
		bare := strings.TrimPrefix(name, "no-")
		if !strings.Contains(help, "--"+name+"=") && !strings.Contains(help, "--[no-]"+bare+" ") &&
			!strings.Contains(help, "--[no-]"+bare+"\n") {
			t.Errorf("%s: nta-exporter has no flag --%s", where, name)
		}
	}
}
