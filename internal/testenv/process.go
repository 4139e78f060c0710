package testenv

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Run runs the program name with args and returns its combined output; it
// fails t, with that output, when the program fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// RunQuiet runs the program name with args and ignores its failure, for
// cleanups that may find nothing to remove.
func RunQuiet(name string, args ...string) { _ = exec.Command(name, args...).Run() }

// SyncBuffer is a bytes.Buffer safe for concurrent use: a child process
// writes its output while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stopTimeout is how long a process may take to exit after SIGINT.
const stopTimeout = 10 * time.Second

// Process is a child process started by Start.
type Process struct {
	// Name names the process in messages.
	Name string
	// Cmd is the running command; its Wait is Start's to call.
	Cmd *exec.Cmd
	// Logs holds the process' standard output and error.
	Logs *SyncBuffer

	done chan struct{} // closed when Cmd.Wait has returned
	err  error         // Cmd.Wait's result, set before done is closed
}

// Start runs bin with args, its standard output and error going to Logs.
// t.Cleanup stops it with SIGINT, kills it and fails t when it has not
// exited within 10 s, and logs its whole output when t has failed.
func Start(t testing.TB, name, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, Cmd: exec.Command(bin, args...), Logs: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Logs, p.Logs
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Signal(os.Interrupt)
		if exited, _ := p.WaitExit(stopTimeout); !exited {
			_ = p.Cmd.Process.Kill()
			<-p.done
			t.Errorf("%s did not stop within %v of SIGINT", name, stopTimeout)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Logs.String())
		}
	})
	return p
}

// WaitExit waits up to within for the process to exit. exited is false
// when it is still running; err is the result of Cmd.Wait otherwise.
func (p *Process) WaitExit(within time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(within):
		return false, nil
	}
}

// WaitHTTP polls url until it answers 200 OK. It fails t when the process
// exits first or within passes, with the tail of the process' output.
func (p *Process) WaitHTTP(t testing.TB, url string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		select {
		case <-p.done:
			t.Fatalf("%s exited early (%v):\n%s", p.Name, p.err, Tail(p.Logs.String(), 3000))
		default:
		}
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil); err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not answer %s within %v:\n%s", p.Name, url, within, Tail(p.Logs.String(), 3000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
