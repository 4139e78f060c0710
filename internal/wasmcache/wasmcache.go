// Package wasmcache keeps go-graphviz's WebAssembly compilation cache out of
// the shared temporary directory.
//
// github.com/goccy/go-graphviz compiles its Graphviz module in a package
// init, with wazero's compilation cache in os.TempDir()/go-graphviz. In a
// shared /tmp that directory belongs to whoever ran first: for another user
// it is unreadable and the init panics (nta would not start), and a root
// exporter would load compiled code from a directory another user may have
// created. So, before that init, this package points TMPDIR at a cache
// directory of the current user (os.UserCacheDir()/nta, mode 0700), or at a
// fresh private temporary directory when there is none, and Restore, called
// from the init of the package that imports go-graphviz, gives the process
// its own TMPDIR back.
//
// It must run before go-graphviz's init. Go initializes packages in import
// path order among those whose imports are initialized (the Go 1.21
// specification): this package imports only os, and its path sorts before
// github.com/tetratelabs/wazero, which go-graphviz needs and which needs os,
// so it runs first (topoweb's TestGraphvizCacheInUserDirectory checks it).
package wasmcache

import "os"

var (
	origTMPDIR, hadTMPDIR = os.LookupEnv("TMPDIR")
	// Dir is the directory TMPDIR pointed at during the inits, "" when it
	// was left alone; scratch is set when Dir is a temporary directory of
	// this process only, removed by Restore.
	Dir     string
	scratch bool
)

func init() {
	if base, err := os.UserCacheDir(); err == nil {
		dir := base + "/nta"
		if err := os.MkdirAll(dir, 0o700); err == nil && private(dir) {
			Dir = dir
		}
	}
	if Dir == "" {
		dir, err := os.MkdirTemp("", "nta-wasm-")
		if err != nil {
			return // nothing writable: go-graphviz then compiles without a cache
		}
		Dir, scratch = dir, true
	}
	os.Setenv("TMPDIR", Dir)
}

// private reports whether dir is a directory of this user that nobody else
// can write to.
func private(dir string) bool {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
		return false
	}
	return ownedByMe(fi)
}

// Scratch reports whether Dir was a temporary directory of this process
// (removed by Restore).
func Scratch() bool { return scratch }

// Restore gives the process its own TMPDIR back and removes a scratch
// cache directory (the compiled module is in memory by then). The package
// that imports go-graphviz calls it in its own init, which runs after
// go-graphviz's.
func Restore() {
	if Dir == "" {
		return
	}
	if hadTMPDIR {
		os.Setenv("TMPDIR", origTMPDIR)
	} else {
		os.Unsetenv("TMPDIR")
	}
	if scratch {
		os.RemoveAll(Dir)
	}
}
