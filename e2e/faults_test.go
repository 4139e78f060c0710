package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
)

// sockProxy forwards a unix socket to dockerd's, so a test can make "Docker"
// vanish and come back without touching the real daemon.
type sockProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t testing.TB, path string) *sockProxy {
	t.Helper()
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &sockProxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", "/var/run/docker.sock")
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

// stop closes the listener and every connection: dockerd "crashed".
func (p *sockProxy) stop() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func dockerSuccess(e *testenv.Exporter) float64 {
	s := e.Scrape().All("nta_collector_success", map[string]string{"collector": "docker"})
	if len(s) != 1 {
		return -1
	}
	return s[0].Value
}

// TestDockerAbsentAndBack: with no Docker the docker collector reports
// success 0 with one log line while everything else keeps flowing; when
// Docker appears, and after it "restarts", the exporter recovers by itself.
func TestDockerAbsentAndBack(t *testing.T) {
	testenv.RequireRoot(t)
	testimage.RequireDocker(t)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	e := testenv.StartExporter(t, "--collector.docker.host=unix://"+sock)

	for i := 0; i < 5; i++ {
		m := e.Scrape()
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "docker"}).Value; v != 0 {
			t.Fatalf("docker success = %v with no socket, want 0", v)
		}
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "links"}).Value; v != 1 {
			t.Fatalf("links collector success = %v while docker is down, want 1", v)
		}
		if len(m.All("nta_interface_info", map[string]string{"netns": "host", "interface": "lo"})) != 1 {
			t.Fatalf("host interfaces missing while docker is down")
		}
	}
	logs := e.Logs.String()
	if n := countLines(logs, "level=WARN", "docker engine unavailable"); n != 1 {
		t.Errorf("want exactly one warning about docker after 5 scrapes, got %d:\n%s", n, logs)
	}
	if n := countLines(logs, "level=ERROR"); n != 0 {
		t.Errorf("an absent Docker is not an error of the exporter; got %d error lines:\n%s", n, logs)
	}
	if !strings.Contains(logs, sock) {
		t.Errorf("the docker error should name the socket %s:\n%s", sock, logs)
	}

	p := startProxy(t, sock)
	testenv.Eventually(t, "docker collector recovers", 45*time.Second, func() error {
		if v := dockerSuccess(e); v != 1 {
			return fmt.Errorf("success %v", v)
		}
		return nil
	})
	p.stop()
	testenv.Eventually(t, "docker collector sees the engine gone", 20*time.Second, func() error {
		if v := dockerSuccess(e); v != 0 {
			return fmt.Errorf("success %v", v)
		}
		return nil
	})
	p = startProxy(t, sock)
	defer p.stop()
	testenv.Eventually(t, "docker collector recovers after a restart", 45*time.Second, func() error {
		if v := dockerSuccess(e); v != 1 {
			return fmt.Errorf("success %v", v)
		}
		return nil
	})
}

func countLines(logs string, needles ...string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		ok := true
		for _, s := range needles {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			n++
		}
	}
	return n
}

// TestUnprivileged: without root the exporter names what it lacks.
func TestUnprivileged(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.ExporterBinary(t)
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "topology", "--no-docker")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	for _, want := range []string{"missing privileges", "CAP_SYS_ADMIN", "run as root"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("unprivileged run does not say %q:\n%s", want, out)
		}
	}
}

// TestBadFlag: a bad flag is a clear message and exit code 2.
func TestBadFlag(t *testing.T) {
	cmd := exec.Command(testenv.ExporterBinary(t), "--no-such-flag")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2; output %s", err, out)
	}
	if !strings.Contains(string(out), "no-such-flag") {
		t.Errorf("message does not name the flag: %s", out)
	}
}
