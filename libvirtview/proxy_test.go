package libvirtview_test

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// socketProxy relays a unix socket the test owns to libvirtd's. down closes
// every relayed connection and removes the socket, which a client cannot
// tell from libvirtd exiting; up listens again, like a restarted libvirtd.
type socketProxy struct {
	t      *testing.T
	path   string
	target string

	mu    sync.Mutex
	l     net.Listener
	conns []net.Conn
}

func newSocketProxy(t *testing.T, target string) *socketProxy {
	p := &socketProxy{t: t, path: filepath.Join(t.TempDir(), "libvirt-sock"), target: target}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *socketProxy) up() {
	l, err := net.Listen("unix", p.path)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("unix", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *socketProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	_ = os.Remove(p.path)
}
