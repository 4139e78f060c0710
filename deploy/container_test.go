package deploy

import (
	"archive/tar"
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
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
	require(t, os.Geteuid() == 0, "root")
	_, err := exec.LookPath("docker")
	require(t, err == nil && exec.Command("docker", "info").Run() == nil, "a running dockerd (docker info)")
	_, err = exec.LookPath("ip")
	require(t, err == nil, "ip (iproute2)")

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
	id := randHex(4)
	image := "nta-exporter:deploy-test-" + id
	importImage(t, image, exporterBinary(t), entry)

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
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
	waitMetrics(t, metricsURL, 30*time.Second, func(string) bool { return true })

	// A named namespace created now, while the exporter runs.
	ns := "ntdeploy-" + id
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	want := []sampleMatcher{
		// Seen through the rslave mount of /var/run/netns and entered with setns.
		{"nta_interface_info", []string{"netns", "named:" + ns, "interface", "lo"}},
		// The host namespace, from /host/proc/1/ns/net.
		{"nta_netns_info", []string{"netns", "host", "kind", "host"}},
	}
	for _, c := range []string{"docker", "netns", "links", "graph"} {
		want = append(want, sampleMatcher{"nta_collector_success", []string{"collector", c}})
	}
	waitMetrics(t, metricsURL, 30*time.Second, func(body string) bool {
		for _, m := range want {
			if !m.match(body) {
				return false
			}
		}
		// Every collector succeeded: no success sample is 0.
		return !hasFailedCollector(body)
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

// importImage builds an image holding only bin at path entry, the shape of
// the Dockerfile's FROM scratch stage; t.Cleanup removes it.
func importImage(t *testing.T, image, bin, entry string) {
	t.Helper()
	tarPath := filepath.Join(t.TempDir(), "rootfs.tar")
	out, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(out)
	rel := strings.TrimPrefix(entry, "/")
	if dir := filepath.Dir(rel); dir != "." {
		if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o755, Size: st.Size()}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(tw, src); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", image).Run() })
	cmd := exec.Command("docker", "import", "-c", `ENTRYPOINT ["`+entry+`"]`, tarPath, image)
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, o)
	}
}

// hasFailedCollector reports whether some nta_collector_success is 0.
func hasFailedCollector(body string) bool {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "nta_collector_success{") && strings.HasSuffix(line, "} 0") {
			return true
		}
	}
	return false
}

// sampleMatcher reports whether a /metrics body has a sample of metric
// carrying all the given label pairs.
type sampleMatcher struct {
	metric string
	labels []string // k, v, k, v...
}

func (m sampleMatcher) match(body string) bool {
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, m.metric+"{")
		if !ok {
			continue
		}
		lbls, _, _ := strings.Cut(rest, "} ")
		lbls = "," + lbls + ","
		all := true
		for i := 0; i+1 < len(m.labels); i += 2 {
			if !strings.Contains(lbls, ","+m.labels[i]+`="`+m.labels[i+1]+`",`) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// waitMetrics polls url until ok(body) or within elapses.
func waitMetrics(t *testing.T, url string, within time.Duration, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if resp.StatusCode == http.StatusOK && ok(last) {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s did not show what was expected within %v; last body (%d bytes):\n%s", url, within, len(last), tail(last, 4000))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestEnsurePropagating checks the shared-mount fallback on a directory of
// its own (the real namespace directories may already be shared here).
func TestEnsurePropagating(t *testing.T) {
	require(t, os.Geteuid() == 0, "root")
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
