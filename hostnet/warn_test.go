package hostnet

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
)

// TestScanErrorsWarnedOnce: a namespace directory that cannot be listed
// is logged at warn once, with what to do, not on every scan (and not
// only at debug); after a scan without the error it is logged again.
func TestScanErrorsWarnedOnce(t *testing.T) {
	var buf bytes.Buffer
	s := NewScanner(Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	denied := &NamespaceError{Path: "/var/run/docker/netns", Err: errors.New("list docker namespaces: " + fs.ErrPermission.Error() +
		" — run as root or grant CAP_DAC_READ_SEARCH")}
	other := &NamespaceError{ID: "named:x", Path: "/var/run/netns/x", Err: errors.New("enter namespace: permission denied")}
	for range 3 {
		s.warnErrors([]error{denied})
	}
	s.warnErrors([]error{denied, other})
	if n := strings.Count(buf.String(), "level=WARN"); n != 2 {
		t.Fatalf("%d warnings for two failing paths over four scans, want 2:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "CAP_DAC_READ_SEARCH") || !strings.Contains(buf.String(), "/var/run/docker/netns") {
		t.Errorf("warning does not name the path and the fix:\n%s", buf.String())
	}
	buf.Reset()
	s.warnErrors(nil)
	s.warnErrors([]error{denied})
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 {
		t.Errorf("error back after a clean scan: %d warnings, want 1", n)
	}
}
