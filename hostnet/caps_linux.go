//go:build linux

package hostnet

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Capability bit numbers from linux/capability.h.
const (
	capDacReadSearch = 2
	capNetAdmin      = 12
	capNetRaw        = 13
	capSysPtrace     = 19
	capSysAdmin      = 21
)

// capability is one privilege the exporter uses and what for.
type capability struct {
	bit  uint
	name string
}

// neededCapabilities lists the capabilities nta uses, in report order.
func neededCapabilities() []capability {
	return []capability{
		{capSysAdmin, "CAP_SYS_ADMIN (enter namespaces)"},
		{capSysPtrace, "CAP_SYS_PTRACE (read /proc/PID/ns/net of other users)"},
		{capNetRaw, "CAP_NET_RAW (packet capture)"},
		{capDacReadSearch, "CAP_DAC_READ_SEARCH (list /var/run/docker/netns, mode 0700)"},
		{capNetAdmin, "CAP_NET_ADMIN (conntrack: NAT metrics)"},
	}
}

// MissingCapabilities reports the privileges nta uses that the process lacks,
// e.g. "CAP_SYS_ADMIN (enter namespaces)", by reading CapEff from
// procPath/self/status (procPath "" means /proc). It returns an empty list
// when all are present.
func MissingCapabilities(procPath string) ([]string, error) {
	path := filepath.Join(cmp.Or(procPath, "/proc"), "self/status")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read capabilities: %w — is procfs mounted?", err)
	}
	defer f.Close()
	eff, err := parseCapEff(f)
	if err != nil {
		return nil, fmt.Errorf("read capabilities from %s: %w", path, err)
	}
	return missingFrom(eff), nil
}

// parseCapEff returns the CapEff bit mask of a /proc/PID/status file.
func parseCapEff(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("parse CapEff %q: %w", strings.TrimSpace(v), err)
		}
		return mask, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no CapEff line")
}

// missingFrom lists the needed capabilities absent from an effective set.
func missingFrom(eff uint64) []string {
	var out []string
	for _, c := range neededCapabilities() {
		if eff&(1<<c.bit) == 0 {
			out = append(out, c.name)
		}
	}
	return out
}
