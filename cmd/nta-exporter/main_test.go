package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	badYAML := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(badYAML, []byte("tls_server_config: [oops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--no-such-flag"}, exitUsage, "unknown long flag '--no-such-flag'"},
		{[]string{"topology", "--format=png"}, exitUsage, "enum value must be one of text,json,dot,svg"},
		{[]string{"--log.level=loud"}, exitUsage, "loud"},
		{[]string{"--scrape.timeout=soon"}, exitUsage, "soon"},
		{[]string{"--collector.nat.peer-budget=0", "--no-collector.libvirt", "--web.listen-address=127.0.0.1:0"}, exitUsage, ""},
		{[]string{"--version"}, 0, "nta-exporter, version"},
		{[]string{"--help"}, 0, "--web.listen-address"},
		// Values that do not parse name their flag.
		{[]string{"--scrape.timeout=abc"}, exitUsage, `--scrape.timeout="abc"`},
		{[]string{"--web.max-requests=abc"}, exitUsage, `--web.max-requests="abc"`},
		{[]string{"--collector.flows.ring.blocks=x"}, exitUsage, `--collector.flows.ring.blocks="x"`},
		// Values that parse but cannot work are refused at start.
		{[]string{"--scrape.timeout=0s"}, exitUsage, "--scrape.timeout=0s: must be positive"},
		{[]string{"--scrape.timeout=-5s"}, exitUsage, "--scrape.timeout=-5s: must be positive"},
		{[]string{"--web.idle-timeout=0s"}, exitUsage, "--web.idle-timeout=0s: must be positive"},
		{[]string{"--web.max-requests=-1"}, exitUsage, "--web.max-requests=-1"},
		{[]string{"--web.listen-address=bad:addr:x"}, exitUsage, `--web.listen-address="bad:addr:x"`},
		{[]string{"--web.listen-address=:99999"}, exitUsage, `--web.listen-address=":99999"`},
		{[]string{"--web.config.file=" + badYAML}, exitUsage, "--web.config.file=" + badYAML},
		{[]string{"--web.config.file=" + badYAML + ".missing"}, exitUsage, "--web.config.file=" + badYAML + ".missing"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, code, c.code, stderr.String())
		}
		if all := stdout.String() + stderr.String(); !strings.Contains(all, c.out) {
			t.Errorf("%v: output lacks %q:\n%s", c.args, c.out, all)
		}
	}
}

// TestStartFailureClosesWatchersQuietly: a start-up failure after the
// Docker and libvirt watchers were created (here a bad capture filter)
// exits 2 naming the flag, without the watchers' "Run called … after
// Close" warning, which said nothing about the actual problem.
func TestStartFailureClosesWatchersQuietly(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.bpf")
	if err := os.WriteFile(empty, []byte(" ,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, filter := range []string{",", "@" + empty} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"--web.listen-address=127.0.0.1:0", "--collector.flows", "--collector.flows.filter-bpf=" + filter,
			"--collector.docker.host=unix://" + filepath.Join(dir, "docker.sock"),
			"--collector.libvirt.socket=" + filepath.Join(dir, "libvirt-sock")}, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), "--collector.flows.filter-bpf") {
			t.Errorf("filter %q: exit %d, want %d naming the flag:\n%s", filter, code, exitUsage, stderr.String())
		}
		if strings.Contains(stderr.String(), "after Close") {
			t.Errorf("filter %q: spurious watcher warning on a start-up failure:\n%s", filter, stderr.String())
		}
	}
}
