// Package deploy holds no Go code, only nta's deployment files
// (Dockerfile, docker-compose.yml, Grafana provisioning, Kubernetes
// manifests, Prometheus rules) and these tests. They parse the files and
// check that they agree with each other, with the repository and with the
// exporter's real flags, run promtool over the rules, and run the exporter
// in a container with docker-compose.yml's settings (docker compose itself
// and the base images are not available on the test machines).
package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	yaml "go.yaml.in/yaml/v2"
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

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// TestMain removes the exporter binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// exporterBinary builds cmd/nta-exporter once per test binary.
func exporterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "nta-deploy-test")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "nta-exporter")
		build := exec.Command("go", "build", "-trimpath", "-o", binPath, "./cmd/nta-exporter")
		build.Dir = ".."
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = errors.New("go build ./cmd/nta-exporter: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// exporterHelp returns the exporter's --help output.
func exporterHelp(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(exporterBinary(t), "--help").CombinedOutput()
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
