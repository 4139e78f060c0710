package deploy

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
)

// TestExporterContainerWithComposeSettings runs the exporter the way
// docker-compose.yml does, with every setting of its exporter service
// translated to `docker run` flags, in an image shaped like the Dockerfile's
// final stage (the static binary alone, imported with `docker import`
// because no base image can be pulled here). It then checks what those
// settings are for: namespaces created after the start are visible through
// the rslave mounts and can be entered (capabilities, AppArmor), the host is
// found through /host/proc, and the Docker socket answers.
func TestExporterContainerWithComposeSettings(t *testing.T) {
	testenv.RequireRoot(t)
	testimage.RequireDocker(t)
	testenv.RequireCommand(t, "ip", "iproute2")

	var c composeFile
	decodeFile(t, "docker-compose.yml", &c)
	svc := c.Services["exporter"]
	var raw struct {
		Services map[string]map[string]any `yaml:"services"`
	}
	decodeFile(t, "docker-compose.yml", &raw)
	translated := []string{"build", "image", "restart", "network_mode", "pid", "privileged", "cap_add", "security_opt", "command", "volumes"}
	for k := range raw.Services["exporter"] {
		if !slices.Contains(translated, k) {
			t.Fatalf("docker-compose.yml exporter setting %q is not translated to docker run by this test: add it to composeRunFlags", k)
		}
	}
	entry := dockerfileEntrypoint(t)
	id := testenv.RandHex(4)
	image := "nta-exporter:deploy-test-" + id
	testimage.ImportBinary(t, image, testenv.ExporterBinary(t), entry)

	addr := testenv.FreeAddr(t)
	args := []string{"run", "-d", "--name", "nta-deploy-test-" + id}
	args = append(args, composeRunFlags(t, svc)...)
	args = append(args, image)
	for _, a := range svc.Command {
		if strings.HasPrefix(a, "--web.listen-address=") {
			a = "--web.listen-address=" + addr // a free port, not the well-known one
		}
		args = append(args, a)
	}
	name := "nta-deploy-test-" + id
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Logf("exporter container logs:\n%s", out)
		}
		_ = exec.Command("docker", "rm", "-f", name).Run()
	})
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	metricsURL := "http://" + addr + "/metrics"
	testenv.Eventually(t, "the exporter container serving "+metricsURL, 30*time.Second, func() error {
		_, err := testenv.Fetch(metricsURL)
		return err
	})

	// A named namespace created now, while the exporter runs.
	ns := "ntdeploy-" + id
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	type wanted struct {
		metric string
		labels map[string]string
	}
	want := []wanted{
		// Seen through the rslave mount of /var/run/netns and entered with setns.
		{"nta_interface_info", map[string]string{"netns": "named:" + ns, "interface": "lo"}},
		// The host namespace, from /host/proc/1/ns/net.
		{"nta_netns_info", map[string]string{"netns": "host", "kind": "host"}},
	}
	for _, c := range []string{"docker", "netns", "links", "graph"} {
		want = append(want, wanted{"nta_collector_success", map[string]string{"collector": c}})
	}
	testenv.Eventually(t, "the new namespace, the host and every collector succeeding in "+metricsURL, 30*time.Second, func() error {
		m, err := testenv.FetchMetrics(metricsURL)
		if err != nil {
			return err
		}
		for _, w := range want {
			if len(m.All(w.metric, w.labels)) == 0 {
				return fmt.Errorf("no sample %s%v", w.metric, w.labels)
			}
		}
		// Every collector succeeded: no success sample is 0.
		for _, c := range m.All("nta_collector_success", nil) {
			if c.Value == 0 {
				return fmt.Errorf("collector %s fails", c.Labels["collector"])
			}
		}
		return nil
	})
	logs, _ := exec.Command("docker", "logs", name).CombinedOutput()
	if strings.Contains(string(logs), "missing privileges") {
		t.Errorf("the exporter reports missing privileges with compose's settings:\n%s", logs)
	}
}

// composeRunFlags translates a compose service's runtime settings into
// `docker run` flags (the test fails on a setting it does not translate).
func composeRunFlags(t *testing.T, s composeService) []string {
	t.Helper()
	var f []string
	if s.NetworkMode != "" {
		f = append(f, "--network", s.NetworkMode)
	}
	if s.PID != "" {
		f = append(f, "--pid", s.PID)
	}
	if s.Privileged {
		f = append(f, "--privileged")
	}
	for _, c := range s.CapAdd {
		f = append(f, "--cap-add", c)
	}
	for _, o := range s.SecurityOpt {
		f = append(f, "--security-opt", o)
	}
	for _, v := range s.Volumes {
		if v.Type != "bind" {
			t.Fatalf("exporter mount %s: type %q not translated", v.Target, v.Type)
		}
		m := "type=bind,source=" + v.Source + ",target=" + v.Target
		if v.ReadOnly {
			m += ",readonly"
		}
		if p := v.Bind.Propagation; p != "" {
			m += ",bind-propagation=" + p
			ensurePropagating(t, v.Source, v.Bind.CreateHostPath)
		}
		f = append(f, "--mount", m)
	}
	return f
}

// ensurePropagating makes dir a shared mount when the mount it lies on is
// neither shared nor a slave: Docker refuses rslave/rshared binds of such a
// source. On a host booted with systemd / is shared and nothing changes;
// the test machines run without systemd, so the directory becomes a shared
// bind mount of itself, which is what `ip netns` does to /var/run/netns.
// It is left in place: undoing it would detach namespaces dockerd mounted
// there meanwhile.
func ensurePropagating(t *testing.T, dir string, create bool) {
	t.Helper()
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if mountPropagates(t, real) {
		return
	}
	for _, args := range [][]string{{"--rbind", real, real}, {"--make-rshared", real}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Fatalf("mount %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Logf("made %s a shared mount (the host's / is private: no systemd)", real)
}

// mountPropagates reports whether the mount holding path is shared or a
// slave, from /proc/self/mountinfo.
func mountPropagates(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	best, opts := "", ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options optional... - fstype source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		mp := fields[4]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, opts = mp, ""
			for _, o := range fields[6:] {
				if o == "-" {
					break
				}
				opts += o + " "
			}
		}
	}
	return strings.Contains(opts, "shared:") || strings.Contains(opts, "master:")
}

// dockerfileEntrypoint returns the path in the Dockerfile's ENTRYPOINT.
func dockerfileEntrypoint(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatal("Dockerfile has no exec-form ENTRYPOINT")
	}
	return string(m[1])
}

// TestEnsurePropagating checks the shared-mount fallback on a directory of
// its own (the real namespace directories may already be shared here).
func TestEnsurePropagating(t *testing.T) {
	testenv.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "ns")
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	if mountPropagates(t, dir) {
		t.Skip("the temporary directory already lies on a shared mount")
	}
	ensurePropagating(t, dir, true)
	if !mountPropagates(t, dir) {
		t.Fatalf("%s is still not a shared or slave mount", dir)
	}
	ensurePropagating(t, dir, true) // idempotent: no second bind mount
	if n := strings.Count(readFile(t, "/proc/self/mountinfo"), " "+dir+" "); n != 1 {
		t.Errorf("%s mounted %d times, want 1", dir, n)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
