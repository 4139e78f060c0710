package libvirtview

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// client is the part of go-libvirt the watcher calls; *libvirt.Libvirt
// implements it, a fake does in tests. One client serves one connection:
// every reconnect dials a fresh one.
type client interface {
	ConnectListAllDomains(needResults int32, flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error)
	DomainGetState(dom libvirt.Domain, flags uint32) (int32, int32, error)
	DomainGetXMLDesc(dom libvirt.Domain, flags libvirt.DomainXMLFlags) (string, error)
	ConnectListAllNetworks(needResults int32, flags libvirt.ConnectListAllNetworksFlags) ([]libvirt.Network, uint32, error)
	NetworkGetXMLDesc(net libvirt.Network, flags uint32) (string, error)
	NetworkIsActive(net libvirt.Network) (int32, error)
	NetworkGetDhcpLeases(net libvirt.Network, mac libvirt.OptString, needResults int32, flags uint32) ([]libvirt.NetworkDhcpLease, uint32, error)
	LifecycleEvents(ctx context.Context) (<-chan libvirt.DomainEventLifecycleMsg, error)
	SubscribeEvents(ctx context.Context, id libvirt.DomainEventID, dom libvirt.OptDomain) (<-chan any, error)
	Disconnected() <-chan struct{}
	// Disconnect ends the connection; it must return within the call
	// deadline even when libvirtd hangs.
	Disconnect() error
}

var (
	_ client = (*libvirt.Libvirt)(nil)
	_ client = (*liveClient)(nil)
)

// errTimeout is a libvirt call past Options.Timeout.
var errTimeout = errors.New("libvirtd did not answer in time")

// call runs f under the watcher's deadline. On timeout it returns at once
// with errTimeout; the session then ends and aborts its client's socket,
// which makes f return (go-libvirt has no deadline of its own).
func call[T any](ctx context.Context, w *Watcher, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	t := time.NewTimer(w.opts.Timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-t.C:
		var zero T
		return zero, fmt.Errorf("%w (%s)", errTimeout, w.opts.Timeout)
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// liveClient is go-libvirt on a socket the watcher can close itself.
// go-libvirt's own Disconnect makes an RPC (ConnectClose) and waits for the
// answer without a deadline, so on a hung libvirtd it never returns; abort
// closes the net.Conn instead, which fails every pending call at once.
type liveClient struct {
	*libvirt.Libvirt
	dialer  *abortableDialer
	timeout time.Duration
}

// Disconnect closes the connection politely (ConnectClose) when libvirtd
// answers within the deadline, and closes the socket in any case.
func (c *liveClient) Disconnect() error {
	done := make(chan error, 1)
	go func() { done <- c.Libvirt.Disconnect() }()
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	defer c.dialer.abort()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("disconnect: %w", errTimeout)
	}
}

// abort closes the socket without an RPC.
func (c *liveClient) abort() { c.dialer.abort() }

// aborter is a client whose socket can be closed without an RPC.
type aborter interface{ abort() }

// abortableDialer dials libvirtd's socket and remembers the connection so
// that abort can close it; a dial after abort fails.
type abortableDialer struct {
	inner *dialers.Local

	mu      sync.Mutex
	conn    net.Conn
	aborted bool
}

// errAborted is a dial on a client that was already aborted.
var errAborted = errors.New("connection aborted")

// Dial implements go-libvirt's socket.Dialer.
func (d *abortableDialer) Dial() (net.Conn, error) {
	c, err := d.inner.Dial()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.aborted {
		c.Close()
		return nil, errAborted
	}
	d.conn = c
	return c, nil
}

func (d *abortableDialer) abort() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aborted = true
	if d.conn != nil {
		d.conn.Close()
	}
}

// dialLibvirt connects a fresh go-libvirt client to the socket and opens
// the URI, all under the call deadline.
func (w *Watcher) dialLibvirt(ctx context.Context) (client, error) {
	d := &abortableDialer{inner: dialers.NewLocal(dialers.WithSocket(w.opts.Socket), dialers.WithLocalTimeout(w.opts.Timeout))}
	c := &liveClient{Libvirt: libvirt.NewWithDialer(d), dialer: d, timeout: w.opts.Timeout}
	_, err := call(ctx, w, func() (struct{}, error) { return struct{}{}, c.ConnectToURI(libvirt.ConnectURI(w.opts.URI)) })
	if err != nil {
		c.abort() // not Disconnect: that would wait for a hung libvirtd
		return nil, fmt.Errorf("connect to %s at %s: %w", w.opts.URI, w.opts.Socket, err)
	}
	return c, nil
}

// closeClient ends a session's client: politely unless the session ended
// because libvirtd stopped answering, then by closing the socket at once.
func closeClient(c client, cause error) {
	if a, ok := c.(aborter); ok && errors.Is(cause, errTimeout) {
		a.abort()
		return
	}
	_ = c.Disconnect()
}

// drain reads ch until it is closed, so that go-libvirt's event goroutine
// blocked on sending to it can return after the session ended (it closes ch
// when the session's context is done or the connection drops).
func drain[T any](ch <-chan T) {
	if ch == nil {
		return
	}
	go func() {
		for range ch {
		}
	}()
}

// isLibvirtError reports whether err is an error libvirtd answered (the
// connection is fine), as opposed to a broken or timed-out connection.
func isLibvirtError(err error) bool {
	var e libvirt.Error
	return errors.As(err, &e)
}
