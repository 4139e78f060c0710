package e2e

import (
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// TestWebConfigBasicAuthAndGzip: --web.config.file (exporter-toolkit) turns
// on basic auth; responses are gzip-compressed when asked; / is a landing page.
func TestWebConfigBasicAuthAndGzip(t *testing.T) {
	testenv.RequireRoot(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("basic_auth_users:\n  prom: %s\n", hash)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	p := testenv.Start(t, "nta-exporter", testenv.ExporterBinary(t), "--web.listen-address="+addr, "--web.config.file="+cfg, "--no-collector.docker", "--no-collector.graph")
	get := func(path, user, pass string, gz bool) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		tr := &http.Transport{DisableCompression: true}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return nil
		}
		return resp
	}
	testenv.Eventually(t, "exporter listening", 20*time.Second, func() error {
		if r := get("/", "", "", false); r != nil {
			r.Body.Close()
			return nil
		}
		return fmt.Errorf("no answer")
	})
	if r := get("/metrics", "", "", false); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("without credentials: status %d, want 401", r.StatusCode)
	}
	if r := get("/metrics", "prom", "wrong", false); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", r.StatusCode)
	}
	r := get("/metrics", "prom", "s3cret", true)
	if r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("with credentials and gzip: status %d encoding %q", r.StatusCode, r.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	if !strings.Contains(string(body), "nta_interface_info{") || !strings.Contains(string(body), "nta_build_info{") {
		t.Errorf("gzip body lacks nta metrics")
	}
	landing := get("/", "prom", "s3cret", false)
	page, _ := io.ReadAll(landing.Body)
	if !strings.Contains(string(page), `href="/metrics"`) || !strings.Contains(string(page), `href="/topology"`) {
		t.Errorf("landing page lacks a link to /metrics or /topology:\n%.300s", page)
	}
	// The topology page, its script, data and drawing sit behind the same auth.
	for _, path := range []string{"/topology", "/topology.js", "/topology.json", "/topology.svg"} {
		if r := get(path, "", "", false); r == nil || r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %v, want 401", path, r)
		}
		if r := get(path, "prom", "wrong", false); r == nil || r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with a wrong password: %v, want 401", path, r)
		}
		r := get(path, "prom", "s3cret", false)
		if r == nil || r.StatusCode != http.StatusOK {
			t.Errorf("%s with credentials: %v, want 200", path, r)
			continue
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if len(body) == 0 {
			t.Errorf("%s: empty body", path)
		}
	}

	// SIGTERM: clean shutdown, exit 0.
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	exited, err := p.WaitExit(10 * time.Second)
	if !exited {
		_ = p.Cmd.Process.Kill()
		t.Fatal("no exit within 10s of SIGTERM")
	}
	if err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, p.Logs.String())
	}
	if !strings.Contains(p.Logs.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", p.Logs.String())
	}
}

// TestHungDockerCannotHangScrape: a Docker socket that accepts and never
// answers must not hold a scrape beyond the API deadline.
func TestHungDockerCannotHangScrape(t *testing.T) {
	testenv.RequireRoot(t)
	sock := filepath.Join(t.TempDir(), "hung.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never answer
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	e := testenv.StartExporter(t, "--collector.docker.host=unix://"+sock, "--collector.docker.timeout=1s", "--scrape.timeout=3s")
	for i := 0; i < 3; i++ {
		begin := time.Now()
		m := e.Scrape()
		if took := time.Since(begin); took > 4*time.Second {
			t.Errorf("scrape took %v with a hung Docker API", took)
		}
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "docker"}).Value; v != 0 {
			t.Errorf("docker success %v with a hung API, want 0", v)
		}
		if v := m.One(t, "nta_collector_success", map[string]string{"collector": "links"}).Value; v != 1 {
			t.Errorf("links success %v, want 1", v)
		}
	}
}

// TestNamespaceChurnNeverFailsScrape: namespaces and veths created and
// deleted while scraping never fail a scrape or a collector.
func TestNamespaceChurnNeverFailsScrape(t *testing.T) {
	testenv.RequireRoot(t)
	e := testenv.StartExporter(t, "--no-collector.docker", "--scrape.host-cache=0s")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ns := fmt.Sprintf("nt-churn%d", i%4)
			_ = exec.Command("ip", "netns", "add", ns).Run()
			_ = exec.Command("ip", "link", "add", fmt.Sprintf("nt-ch%d", i%4), "type", "veth", "peer", "name", "eth0", "netns", ns).Run()
			_ = exec.Command("ip", "link", "del", fmt.Sprintf("nt-ch%d", i%4)).Run()
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	}()
	t.Cleanup(func() {
		for i := 0; i < 4; i++ {
			testenv.RunQuiet("ip", "netns", "del", fmt.Sprintf("nt-churn%d", i))
		}
	})
	for i := 0; i < 30; i++ {
		m := e.Scrape()
		for _, c := range []string{"links", "netns", "graph"} {
			if v := m.One(t, "nta_collector_success", map[string]string{"collector": c}).Value; v != 1 {
				t.Errorf("scrape %d: collector %s success %v during churn", i, c, v)
			}
		}
	}
	close(stop)
	wg.Wait()
}
