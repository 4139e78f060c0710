package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--no-such-flag"}, exitUsage, "unknown long flag '--no-such-flag'"},
		{[]string{"topology", "--format=svg"}, exitUsage, "enum value must be one of text,json,dot"},
		{[]string{"--log.level=loud"}, exitUsage, "loud"},
		{[]string{"--scrape.timeout=soon"}, exitUsage, "soon"},
		{[]string{"--collector.nat.peer-budget=0", "--no-collector.libvirt", "--web.listen-address=127.0.0.1:0"}, exitUsage, ""},
		{[]string{"--version"}, 0, "nta-exporter, version"},
		{[]string{"--help"}, 0, "--web.listen-address"},
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
