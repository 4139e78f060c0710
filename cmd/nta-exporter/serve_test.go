package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// bigRunner emits n series with long labels: a reply of several MB, far
// more than the socket buffers of a client that does not read.
type bigRunner struct{ n int }

var bigDesc = prometheus.NewDesc("nta_test_big", "A large family.", []string{"a", "b"}, nil)

func (r bigRunner) Run(ctx context.Context, ch chan<- prometheus.Metric) {
	pad := strings.Repeat("x", 100)
	for i := range r.n {
		ch <- prometheus.MustNewConstMetric(bigDesc, prometheus.GaugeValue, float64(i), fmt.Sprint(i), pad)
	}
}

// startMetricsServer serves metricsServer as serve configures it, with
// the given scrape timeout and idle timeout, on a loopback port.
func startMetricsServer(t *testing.T, runner scrapeRunner, timeout, idle time.Duration) string {
	t.Helper()
	path, maxReq := "/metrics", 40
	s := serveFlags{metricsPath: &path, maxRequests: &maxReq, timeout: &timeout, idle: &idle}
	srv, err := metricsServer(runner, prometheus.Gatherers{}, s, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestSlowReadersCannotLockOutScrapes: 45 clients (more than
// --web.max-requests) send GET /metrics for a reply of ~6 MB and never
// read it. Once their write deadline (twice --scrape.timeout) passes the
// server drops them and their slots are free again: a normal scrape
// succeeds within that deadline plus a margin. (Before the deadline every
// other scrape got 503 for as long as they stayed.)
func TestSlowReadersCannotLockOutScrapes(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 45 connections for seconds")
	}
	const timeout = time.Second
	addr := startMetricsServer(t, bigRunner{n: 50000}, timeout, time.Minute)
	var stuck []net.Conn
	for range 45 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.(*net.TCPConn).SetReadBuffer(4096)
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: nta\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		stuck = append(stuck, c)
	}
	time.Sleep(500 * time.Millisecond) // their gathers run and their writes block

	start := time.Now()
	// The write deadline, plus time for 46 gathers of 50k series on a
	// small shared machine.
	limit := 2*timeout + 10*time.Second
	client := &http.Client{Timeout: limit}
	var last string
	for time.Since(start) < limit {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			last = err.Error()
			continue
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && n > 5<<20 {
			t.Logf("scrape of %d bytes succeeded %s after 45 non-reading clients took the slots", n, time.Since(start).Round(time.Millisecond))
			return
		}
		last = resp.Status
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no successful scrape within %s while 45 clients do not read (last: %s)", limit, last)
}

// TestIdleKeepAliveConnectionsAreClosed: a keep-alive connection that
// stays idle after a scrape is closed by the server after
// --web.idle-timeout.
func TestIdleKeepAliveConnectionsAreClosed(t *testing.T) {
	addr := startMetricsServer(t, bigRunner{n: 3}, time.Second, 300*time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: nta\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("status %s, close %v: want a kept-alive 200", resp.Status, resp.Close)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = br.ReadByte()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read returned %v after %s, want EOF (closed by the server)", err, time.Since(start))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle connection closed after %s, want about the 300ms idle timeout", d)
	}
}
