// Package testenv is the harness that nta's end-to-end tests share (e2e,
// e2e/dashboards, deploy; hostnet's privileged tests use its iproute2
// reader): the prerequisite rule, building nta-exporter once per test
// binary, running it and other daemons as child processes whose output is
// shown when a test fails, scraping and parsing /metrics, reading links
// with `ip -j` and `bridge -j`, and polling until a condition holds.
//
// Policy for prerequisites (root, a program, a daemon): a test skips when
// one is missing, except when the environment has CI=true, where it fails.
// scripts/lab-up.sh installs and starts everything.
//
// Docker helpers and the test image are in the sibling package testimage.
//
// This package starts processes and builds binaries; it is imported only by
// tests (_test.go files) and must not be imported by product code.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether the environment variable CI is "true": a missing
// prerequisite then fails a test instead of skipping it.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require returns when ok. Otherwise it fails t under CI (see InCI) and
// skips it elsewhere, with a message naming what is missing.
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("prerequisite missing under CI: %s (run scripts/lab-up.sh)", what)
	}
	t.Skipf("prerequisite missing: %s (run scripts/lab-up.sh as root)", what)
}

// RequireRoot requires that the test runs as root, like Require.
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "root")
}

// RequireCommand requires the program name in PATH, like Require; hint,
// when not empty, says where the program comes from ("Debian package
// prometheus").
func RequireCommand(t testing.TB, name, hint string) {
	t.Helper()
	what := name + " in PATH"
	if hint != "" {
		what += " (" + hint + ")"
	}
	_, err := exec.LookPath(name)
	Require(t, err == nil, what)
}

// pollInterval is how often Eventually tries again.
const pollInterval = 200 * time.Millisecond

// Eventually calls f until it returns nil, every 200 ms, and fails t with
// f's last error when within has passed. what names the awaited condition
// in the failure message.
func Eventually(t testing.TB, what string, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(pollInterval)
	}
}

// FreeAddr returns a loopback TCP address ("127.0.0.1:port") whose port
// was free a moment ago, for a server the test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// RandHex returns 2n random hex digits, for names of namespaces, links and
// containers that must not collide with other tests.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Tail returns the last n bytes of s, marked with a leading "…" when cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
