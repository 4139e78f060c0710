package dockerview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"
)

// Kinds of unavailability; a change of kind is logged, a repeat is not.
const (
	kindNotSynced     = "not synced"
	kindSocketMissing = "socket missing"
	kindPermission    = "permission denied"
	kindRefused       = "connection refused"
	kindTimeout       = "timeout"
	kindStream        = "event stream closed"
	kindConnect       = "cannot connect"
	kindAPI           = "api error"
	kindStopped       = "stopped"
)

// unavailableError is what View returns while Docker cannot be used. It
// wraps both ErrUnavailable and the cause.
type unavailableError struct {
	kind string // one of the kind* constants
	msg  string // what happened and what to do
	err  error  // cause, may be nil
}

func (e *unavailableError) Error() string {
	if e.err == nil {
		return ErrUnavailable.Error() + ": " + e.msg
	}
	return ErrUnavailable.Error() + ": " + e.msg + ": " + e.err.Error()
}

func (e *unavailableError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.err}
}

// errNotSynced is the error of View before the first sync has finished.
func errNotSynced() error {
	return &unavailableError{kind: kindNotSynced, msg: "not synced yet (Watcher.Run has not completed a first sync)"}
}

// socketPath returns the file of a unix:// host, "" for other schemes.
func socketPath(host string) string {
	p, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return ""
	}
	return p
}

// diagnose turns an error of the Docker client into an unavailableError
// whose message says what to do. host is the engine address in use and
// timeout the per-call deadline. The docker client replaces "connection
// refused" and "no such file" by a generic message, so for unix sockets the
// socket file is examined to tell the two apart.
func diagnose(err error, host string, timeout time.Duration) *unavailableError {
	var ue *unavailableError
	if errors.As(err, &ue) {
		return ue
	}
	sock := socketPath(host)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &unavailableError{kind: kindTimeout, err: err,
			msg: fmt.Sprintf("docker engine at %s did not answer within %s — dockerd is hung or overloaded", host, timeout)}
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EACCES):
		what := "docker engine at " + host
		if sock != "" {
			what = "docker socket " + sock
		}
		return &unavailableError{kind: kindPermission, err: err,
			msg: what + ": permission denied — run as root or add the user to group docker"}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return &unavailableError{kind: kindStream, err: err,
			msg: fmt.Sprintf("connection to docker engine at %s closed — dockerd stopped or restarted; reconnecting", host)}
	}
	if sock != "" && (client.IsErrConnectionFailed(err) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)) {
		return diagnoseSocket(err, sock)
	}
	if client.IsErrConnectionFailed(err) || errors.Is(err, syscall.ECONNREFUSED) {
		return &unavailableError{kind: kindConnect, err: err,
			msg: fmt.Sprintf("cannot connect to docker engine at %s — is dockerd running? check DOCKER_HOST", host)}
	}
	return &unavailableError{kind: kindAPI, err: err,
		msg: fmt.Sprintf("docker engine at %s returned an error", host)}
}

// diagnoseSocket explains a failed connection to the unix socket sock.
func diagnoseSocket(err error, sock string) *unavailableError {
	fi, serr := os.Stat(sock)
	switch {
	case errors.Is(serr, fs.ErrNotExist):
		return &unavailableError{kind: kindSocketMissing, err: err,
			msg: "docker socket " + sock + " not found — is dockerd running? set DOCKER_HOST for a non-default engine"}
	case errors.Is(serr, fs.ErrPermission):
		return &unavailableError{kind: kindPermission, err: err,
			msg: "docker socket " + sock + ": permission denied — run as root or add the user to group docker"}
	case serr == nil && fi.Mode().Type() != fs.ModeSocket:
		return &unavailableError{kind: kindConnect, err: err,
			msg: "docker socket " + sock + " is not a socket — set DOCKER_HOST to the engine's address"}
	}
	return &unavailableError{kind: kindRefused, err: err,
		msg: "docker socket " + sock + " exists but nobody answers — dockerd is not running (stale socket); start dockerd"}
}
