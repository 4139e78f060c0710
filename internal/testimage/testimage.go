// Package testimage provides the container image and docker CLI helpers
// that tests against a real dockerd share. No registry is needed: the image
// nta-test/app:1 is a single static Go binary (source in app/main.go, whose
// doc comment lists its flags) imported with `docker import`.
//
// Policy for tests needing docker: they skip when the engine is absent,
// except when the environment has CI=true, where a missing engine fails
// (testenv.Require).
//
// This package runs the docker and go commands; it is for tests only and
// must not be imported by product code.
package testimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// Ref is the reference of the test image.
const Ref = "nta-test/app:1"

// LabelSourceHash is the image label holding the sha256 of app/main.go, so
// an image built from an older source is rebuilt.
const LabelSourceHash = "org.nta.testimage.source-sha256"

//go:embed app/main.go
var appSource []byte

// DefaultSocket is the engine socket probed when DOCKER_HOST is unset.
const DefaultSocket = "/var/run/docker.sock"

// Available returns nil when a docker CLI and a reachable engine are
// present: DOCKER_HOST set, or DefaultSocket existing, and `docker info`
// answering. Otherwise its error says what is missing.
func Available() error {
	if os.Getenv("DOCKER_HOST") == "" {
		if _, err := os.Stat(DefaultSocket); err != nil {
			return fmt.Errorf("%w (start dockerd or set DOCKER_HOST)", err)
		}
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return errors.New("docker CLI not in PATH")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return fmt.Errorf("docker info: %s", strings.TrimSpace(string(out)))
	}
	return nil
}

// RequireDocker skips t (fails it when CI=true) unless Available.
func RequireDocker(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		testenv.Require(t, false, "a running dockerd: "+err.Error())
	}
}

// Docker runs the docker CLI with args and returns its trimmed stdout; it
// fails t with the command's stderr when docker exits non-zero.
func Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := DockerErr(args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// DockerErr runs the docker CLI with args and returns its trimmed stdout, or
// an error that contains the command line and its stderr.
func DockerErr(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), &cmdError{args: args, err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSpace(stdout.String()), nil
}

type cmdError struct {
	args   []string
	err    error
	stderr string
}

func (e *cmdError) Error() string {
	return "docker " + strings.Join(e.args, " ") + ": " + e.err.Error() + ": " + e.stderr
}

func (e *cmdError) Unwrap() error { return e.err }

// SourceHash returns the hex sha256 of the embedded app source.
func SourceHash() string {
	sum := sha256.Sum256(appSource)
	return hex.EncodeToString(sum[:])
}

// Ensure makes sure the image Ref exists in the engine, built from the
// current app/main.go, and returns Ref. It is idempotent and safe to call
// from parallel tests and test binaries (a file lock serialises builds).
// It skips or fails t like RequireDocker when docker is missing.
func Ensure(t testing.TB) string {
	t.Helper()
	RequireDocker(t)
	want := SourceHash()

	unlock := lock(t)
	defer unlock()

	got, err := DockerErr("image", "inspect", "--format",
		`{{index .Config.Labels "`+LabelSourceHash+`"}}`, Ref)
	if err == nil && got == want {
		return Ref
	}
	importBinary(t, Ref, build(t, t.TempDir()), "/app", "LABEL "+LabelSourceHash+"="+want)
	return Ref
}

// ImportBinary creates image with `docker import` from a root filesystem
// holding only the executable bin at the absolute path entry, which is also
// the image's ENTRYPOINT: the shape of a FROM scratch image. changes are
// further `docker import --change` instructions. t.Cleanup removes the
// image.
func ImportBinary(t testing.TB, image, bin, entry string, changes ...string) {
	t.Helper()
	t.Cleanup(func() {
		if _, err := DockerErr("rmi", "-f", image); err != nil && !isNotFound(err) {
			t.Logf("cleanup: %v", err)
		}
	})
	importBinary(t, image, bin, entry, changes...)
}

// importBinary is ImportBinary without the cleanup.
func importBinary(t testing.TB, image, bin, entry string, changes ...string) {
	t.Helper()
	tarPath := filepath.Join(t.TempDir(), "rootfs.tar")
	writeTar(t, tarPath, bin, entry)
	args := []string{"import", "--change", `ENTRYPOINT ["` + entry + `"]`}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	Docker(t, append(args, tarPath, image)...)
}

// lock takes an exclusive file lock shared by every test process.
func lock(t testing.TB) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "nta-testimage.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("testimage lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("testimage lock: %v", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// build compiles the embedded source into a static linux binary in dir.
func build(t testing.TB, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"main.go": appSource,
		"go.mod":  []byte("module nta-testimage-app\n\ngo 1.22\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "app")
	cmd := exec.Command(goTool(), "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH,
		"GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test image program: %v\n%s", err, out)
	}
	return bin
}

// goTool returns the go command: from PATH (go test puts GOROOT/bin first),
// else $GOROOT/bin/go.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if r := os.Getenv("GOROOT"); r != "" {
		return filepath.Join(r, "bin", "go")
	}
	return "go"
}

// writeTar writes a root filesystem holding only bin at the absolute path
// entry, and the directories above it.
func writeTar(t testing.TB, path, bin, entry string) {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	rel := strings.TrimPrefix(filepath.Clean(entry), "/")
	var dirs []string
	for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		hdr := &tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
	}
	hdr := &tar.Header{Name: rel, Mode: 0o755, Size: int64(len(data)),
		Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
