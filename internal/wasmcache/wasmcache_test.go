package wasmcache

import (
	"os"
	"testing"
)

func TestCacheDirectoryIsPrivate(t *testing.T) {
	if Dir == "" {
		t.Fatal("no cache directory chosen")
	}
	if !private(Dir) {
		t.Errorf("%s is not a directory of this user only", Dir)
	}
	if got := os.Getenv("TMPDIR"); got != Dir {
		t.Errorf("TMPDIR during the inits = %q, want %q", got, Dir)
	}
	Restore()
	if got, ok := os.LookupEnv("TMPDIR"); got != origTMPDIR || ok != hadTMPDIR {
		t.Errorf("TMPDIR after Restore = %q (set %v), want %q (set %v)", got, ok, origTMPDIR, hadTMPDIR)
	}
}

func TestSharedDirectoryIsNotPrivate(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if private(dir) {
		t.Errorf("world-writable %s taken for private", dir)
	}
}
