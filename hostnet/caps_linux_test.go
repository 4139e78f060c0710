//go:build linux

package hostnet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const statusSample = `Name:	nta-exporter
Umask:	0022
State:	S (sleeping)
CapInh:	0000000000000000
CapPrm:	%s
CapEff:	%s
CapBnd:	000001ffffffffff
CapAmb:	0000000000000000
NoNewPrivs:	0
`

func status(eff string) string {
	return strings.ReplaceAll(statusSample, "%s", eff)
}

func TestParseCapEffAndMissing(t *testing.T) {
	for _, tc := range []struct {
		eff  string
		want []string
	}{
		{"000001ffffffffff", nil},
		{"0000000000000000", []string{
			"CAP_SYS_ADMIN (enter namespaces)",
			"CAP_SYS_PTRACE (read /proc/PID/ns/net of other users)",
			"CAP_NET_RAW (packet capture)",
			"CAP_DAC_READ_SEARCH (list /var/run/docker/netns, mode 0700)",
			"CAP_NET_ADMIN (conntrack: NAT metrics)",
		}},
		// CAP_NET_RAW (13) | CAP_SYS_ADMIN (21) only.
		{"0000000000202000", []string{"CAP_SYS_PTRACE (read /proc/PID/ns/net of other users)", "CAP_DAC_READ_SEARCH (list /var/run/docker/netns, mode 0700)", "CAP_NET_ADMIN (conntrack: NAT metrics)"}},
		// CAP_SYS_PTRACE (19) | CAP_SYS_ADMIN (21).
		{"0000000000280000", []string{"CAP_NET_RAW (packet capture)", "CAP_DAC_READ_SEARCH (list /var/run/docker/netns, mode 0700)", "CAP_NET_ADMIN (conntrack: NAT metrics)"}},
		// The documented set: SYS_ADMIN, SYS_PTRACE, NET_RAW, DAC_READ_SEARCH (2), NET_ADMIN (12).
		{"0000000000283004", nil},
		// Everything but CAP_NET_ADMIN.
		{"0000000000282004", []string{"CAP_NET_ADMIN (conntrack: NAT metrics)"}},
		// Everything but CAP_DAC_READ_SEARCH: Docker's 0700 netns directory.
		{"0000000000283000", []string{"CAP_DAC_READ_SEARCH (list /var/run/docker/netns, mode 0700)"}},
	} {
		eff, err := parseCapEff(strings.NewReader(status(tc.eff)))
		if err != nil {
			t.Fatalf("%s: %v", tc.eff, err)
		}
		if got := missingFrom(eff); !slices.Equal(got, tc.want) {
			t.Errorf("CapEff %s: missing %q, want %q", tc.eff, got, tc.want)
		}
	}
}

func TestParseCapEffErrors(t *testing.T) {
	for _, in := range []string{"Name: x\n", "CapEff:\tzzzz\n", ""} {
		if _, err := parseCapEff(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestMissingCapabilitiesFromProcPath(t *testing.T) {
	proc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "self/status"), []byte(status("0000000000003000")), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := MissingCapabilities(proc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !strings.HasPrefix(got[0], "CAP_SYS_ADMIN") || !strings.HasPrefix(got[1], "CAP_SYS_PTRACE") || !strings.HasPrefix(got[2], "CAP_DAC_READ_SEARCH") {
		t.Errorf("MissingCapabilities = %q", got)
	}
	if _, err := MissingCapabilities(filepath.Join(proc, "nonexistent")); err == nil {
		t.Error("missing status file: no error")
	}
	// The real one must at least parse.
	if _, err := MissingCapabilities(""); err != nil {
		t.Errorf("MissingCapabilities(/proc): %v", err)
	}
}
