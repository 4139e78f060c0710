package deploy

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// TestPrometheusFiles runs promtool over the rules, their unit tests and the
// repository's prometheus.yml (whose rule_files resolve to deploy/rules).
func TestPrometheusFiles(t *testing.T) {
	testenv.RequireCommand(t, "promtool", "Debian package prometheus")
	for _, args := range [][]string{
		{"check", "rules", "rules/nta-alerts.yml"},
		{"test", "rules", "rules/nta-alerts.test.yml"},
		{"check", "rules", "rules/nta-recording.yml"},
		{"test", "rules", "rules/nta-recording.test.yml"},
		{"check", "config", "../prometheus.yml"},
	} {
		out, err := exec.Command("promtool", args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	testenv.RequireCommand(t, "amtool", "Debian package prometheus-alertmanager")
	if out, err := exec.Command("amtool", "check-config", "alertmanager.yml").CombinedOutput(); err != nil {
		t.Errorf("amtool check-config alertmanager.yml: %v\n%s", err, out)
	}
}
