package dockerview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// connErr builds the error net/http returns for a failed dial to sock.
func connErr(sock string, errno syscall.Errno) error {
	return &url.Error{Op: "Get", URL: "http://%2Fvar%2Frun%2Fdocker.sock/_ping",
		Err: &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: sock, Net: "unix"},
			Err: os.NewSyscallError("connect", errno)}}
}

func TestDiagnose(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the socket file stays, nobody listens: connection refused
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, host string
		err        error
		kind, want string
	}{
		{"socket missing", "unix://" + missing, connErr(missing, syscall.ENOENT), kindSocketMissing,
			"docker socket " + missing + " not found — is dockerd running? set DOCKER_HOST for a non-default engine"},
		{"stale socket", "unix://" + stale, connErr(stale, syscall.ECONNREFUSED), kindRefused,
			"docker socket " + stale + " exists but nobody answers — dockerd is not running"},
		{"not a socket", "unix://" + plain, connErr(plain, syscall.ECONNREFUSED), kindConnect, "is not a socket"},
		{"permission", "unix:///var/run/docker.sock", connErr("/var/run/docker.sock", syscall.EACCES), kindPermission,
			"docker socket /var/run/docker.sock: permission denied — run as root or add the user to group docker"},
		{"timeout", "unix:///var/run/docker.sock", fmt.Errorf("list networks: %w", context.DeadlineExceeded), kindTimeout,
			"did not answer within 5s — dockerd is hung or overloaded"},
		{"stream closed", "unix:///var/run/docker.sock", fmt.Errorf("event stream: %w", io.EOF), kindStream,
			"closed — dockerd stopped or restarted"},
		{"tcp refused", "tcp://192.0.2.1:2375", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, kindConnect,
			"cannot connect to docker engine at tcp://192.0.2.1:2375 — is dockerd running? check DOCKER_HOST"},
		{"api error", "unix:///var/run/docker.sock", errors.New("Error response from daemon: boom"), kindAPI, "returned an error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ue := diagnose(tc.err, tc.host, 5*time.Second)
			if ue.kind != tc.kind {
				t.Errorf("kind %q, want %q", ue.kind, tc.kind)
			}
			if !strings.Contains(ue.Error(), tc.want) {
				t.Errorf("message %q does not contain %q", ue.Error(), tc.want)
			}
			if !errors.Is(ue, ErrUnavailable) || !errors.Is(ue, tc.err) {
				t.Errorf("error does not wrap ErrUnavailable and the cause")
			}
			if again := diagnose(fmt.Errorf("x: %w", ue), tc.host, time.Second); again != ue {
				t.Errorf("diagnose of a diagnosed error changed it")
			}
		})
	}
}

// TestRealClientErrors runs the real docker client against a missing and a
// stale socket; no dockerd is needed.
func TestRealClientErrors(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	for sock, want := range map[string]string{
		filepath.Join(dir, "docker.sock"): "not found — is dockerd running? set DOCKER_HOST for a non-default engine",
		stale:                             "exists but nobody answers — dockerd is not running (stale socket); start dockerd",
	} {
		w, err := New(Options{Host: "unix://" + sock, Timeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if w.Host() != "unix://"+sock {
			t.Errorf("Host() = %q", w.Host())
		}
		ctx, cancel := context.WithCancel(context.Background())
		go w.Run(ctx)
		var verr error
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, verr = w.View()
			if verr != nil && !strings.Contains(verr.Error(), "not synced") || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !errors.Is(verr, ErrUnavailable) || !strings.Contains(verr.Error(), want) {
			t.Errorf("%s: View error %v, want it to contain %q", sock, verr, want)
		}
		cancel()
		w.Close()
	}
}
