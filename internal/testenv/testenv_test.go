package testenv

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Fatalf and Skipf and ends the
// goroutine calling them, as testing does.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// record runs f with a recorder on a goroutine of its own.
func record(f func(testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		ci            string
		ok            bool
		failed, skips bool
	}{
		{ci: "true", ok: true},
		{ci: "", ok: true},
		{ci: "true", ok: false, failed: true},
		{ci: "", ok: false, skips: true},
		{ci: "1", ok: false, skips: true}, // only "true" means CI
	} {
		t.Run(fmt.Sprintf("CI=%q,ok=%v", tc.ci, tc.ok), func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := record(func(tb testing.TB) { Require(tb, tc.ok, "a thing") })
			if (r.failed != "") != tc.failed || (r.skipped != "") != tc.skips {
				t.Fatalf("failed %q, skipped %q; want failed %v, skipped %v", r.failed, r.skipped, tc.failed, tc.skips)
			}
			if msg := r.failed + r.skipped; (tc.failed || tc.skips) && !strings.Contains(msg, "a thing") {
				t.Errorf("message %q does not name what is missing", msg)
			}
		})
	}
}

func TestRequireCommand(t *testing.T) {
	t.Setenv("CI", "true")
	if r := record(func(tb testing.TB) { RequireCommand(tb, "sh", "") }); r.failed != "" {
		t.Errorf("sh: %s", r.failed)
	}
	r := record(func(tb testing.TB) { RequireCommand(tb, "nta-no-such-program", "Debian package none") })
	if !strings.Contains(r.failed, "nta-no-such-program in PATH (Debian package none)") {
		t.Errorf("missing program under CI: failed %q", r.failed)
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, "third call", 5*time.Second, func() error {
		if n++; n < 3 {
			return fmt.Errorf("call %d", n)
		}
		return nil
	})
	r := record(func(tb testing.TB) {
		Eventually(tb, "never", 300*time.Millisecond, func() error { return errors.New("last reason") })
	})
	if !strings.Contains(r.failed, "never") || !strings.Contains(r.failed, "last reason") {
		t.Errorf("failure %q should name the condition and the last error", r.failed)
	}
}

const exposition = `# TYPE a_total counter
a_total{x="1",y="p"} 3
a_total{x="2",y="p"} 4
# TYPE b gauge
b 7.5
`

func TestMetrics(t *testing.T) {
	m, err := ParseMetrics(exposition)
	if err != nil {
		t.Fatal(err)
	}
	if s := m.All("a_total", map[string]string{"y": "p"}); len(s) != 2 {
		t.Errorf("All(a_total, y=p) = %v, want 2 samples", s)
	}
	if s := m.One(t, "a_total", map[string]string{"x": "2"}); s.Value != 4 || s.Labels["y"] != "p" {
		t.Errorf("One(a_total, x=2) = %v", s)
	}
	if s := m.One(t, "b", nil); s.Value != 7.5 {
		t.Errorf("gauge b = %v, want 7.5", s.Value)
	}
	if s := m.All("absent", nil); s != nil {
		t.Errorf("All(absent) = %v", s)
	}
	for _, match := range []map[string]string{nil, {"x": "3"}} {
		if r := record(func(tb testing.TB) { m.One(tb, "a_total", match) }); r.failed == "" {
			t.Errorf("One(a_total, %v) did not fail", match)
		}
	}
	if _, err := ParseMetrics("a{ 1\n"); err == nil {
		t.Error("ParseMetrics accepted a broken exposition")
	}
}

func TestProcess(t *testing.T) {
	p := Start(t, "sh", "sh", "-c", "echo out; echo err >&2; exit 3")
	exited, err := p.WaitExit(10 * time.Second)
	var ee *exec.ExitError
	if !exited || !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("WaitExit = %v, %v; want exited with status 3", exited, err)
	}
	if got := p.Logs.String(); !strings.Contains(got, "out\n") || !strings.Contains(got, "err\n") {
		t.Errorf("Logs = %q, want stdout and stderr", got)
	}
	r := record(func(tb testing.TB) { p.WaitHTTP(tb, "http://"+FreeAddr(t), time.Second) })
	if !strings.Contains(r.failed, "exited early") {
		t.Errorf("WaitHTTP on an exited process: %q", r.failed)
	}
}

func TestTail(t *testing.T) {
	if got := Tail("abcdef", 3); got != "…def" {
		t.Errorf("Tail = %q", got)
	}
	if got := Tail("ab", 3); got != "ab" {
		t.Errorf("Tail = %q", got)
	}
}

func TestIPLinksReadsIproute2(t *testing.T) {
	RequireCommand(t, "ip", "Debian package iproute2")
	// A prefix that writes to standard error first: only stdout is JSON.
	noisy := []string{"sh", "-c", `echo "warning: noise" >&2; exec "$@"`, "sh"}
	if lo, ok := IPLinks(t, noisy...)["lo"]; !ok || lo.LinkType != "loopback" || lo.Linkinfo.InfoKind != "" {
		t.Errorf("lo = %+v, %v; want a loopback link without linkinfo", lo, ok)
	}
	r := record(func(tb testing.TB) { IPLinks(tb, "sh", "-c", "echo no such namespace >&2; exit 3", "sh") })
	if !strings.Contains(r.failed, "no such namespace") {
		t.Errorf("failing command: failed %q, want its standard error", r.failed)
	}
}

func TestIPLinksEntersANamespace(t *testing.T) {
	RequireRoot(t)
	RequireCommand(t, "unshare", "Debian package util-linux")
	RequireCommand(t, "bridge", "Debian package iproute2")
	fresh := []string{"unshare", "--net"}
	links := IPLinks(t, fresh...)
	if lo, ok := links["lo"]; len(links) != 1 || !ok || lo.Ifindex != 1 {
		t.Errorf("new namespace: links %+v, want lo alone with index 1", links)
	}
	// No bridge, no ports: an empty list, not a decode error.
	if ports := BridgePorts(t, fresh...); len(ports) != 0 {
		t.Errorf("new namespace: bridge ports %+v, want none", ports)
	}
}
