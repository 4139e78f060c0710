// Command app is the only program of the test image nta-test/app (see
// package testimage). It is a static binary without shell or libc so the
// image stays tiny and builds offline.
//
// Serve mode (the default; this is the image's ENTRYPOINT):
//
//	/app [-listen :80] [-echo]
//
// listens on the TCP and UDP address -listen (default ":80", or ":$PORT"
// when the environment variable PORT is set), discards what it receives (or
// echoes TCP data back with -echo) and prints one line per TCP connection
// ("tcp <peer> received <n> bytes") and per UDP datagram
// ("udp <peer> received <n> bytes") on stdout.
//
// Send mode, to generate an exact amount of traffic between containers
// (run it with `docker exec <container> /app -send ...`):
//
//	/app -send host:port [-proto tcp|udp] [-bytes N] [-chunk N] [-count N]
//
// sends -bytes payload bytes (default 1000) to host:port, -count times
// (default 1). TCP: one connection per transfer, written in -chunk sized
// writes (default 1000); the sender then half-closes and waits until the
// receiver closes, so when the command exits the receiver has read all data.
// UDP: -bytes are split into datagrams of at most -chunk payload bytes.
// It prints "sent <n> bytes to <addr> (<proto>)" per transfer and exits 0.
//
// Idle mode: /app -sleep blocks without listening.
//
// The program exits 0 on SIGTERM or SIGINT, which PID 1 in a container
// otherwise ignores, so `docker stop` is immediate.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	defaultListen := ":80"
	if p := os.Getenv("PORT"); p != "" {
		defaultListen = ":" + p
	}
	listen := flag.String("listen", defaultListen, "TCP and UDP address to serve")
	echo := flag.Bool("echo", false, "echo TCP data back instead of discarding it")
	send := flag.String("send", "", "send mode: destination host:port")
	proto := flag.String("proto", "tcp", "send mode: tcp or udp")
	size := flag.Int("bytes", 1000, "send mode: payload bytes per transfer")
	chunk := flag.Int("chunk", 1000, "send mode: bytes per write / per UDP datagram")
	count := flag.Int("count", 1, "send mode: number of transfers")
	sleep := flag.Bool("sleep", false, "idle mode: block without listening")
	flag.Parse()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		os.Exit(0)
	}()

	var err error
	switch {
	case *send != "":
		err = sendAll(*send, *proto, *size, *chunk, *count)
	case *sleep:
		select {}
	default:
		err = serve(*listen, *echo)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

func sendAll(addr, proto string, size, chunk, count int) error {
	if chunk <= 0 || size < 0 || count < 1 {
		return errors.New("-chunk must be > 0, -bytes >= 0, -count >= 1")
	}
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	for range count {
		var err error
		switch proto {
		case "tcp":
			err = sendTCP(addr, buf, size)
		case "udp":
			err = sendUDP(addr, buf, size)
		default:
			err = fmt.Errorf("unknown -proto %q (want tcp or udp)", proto)
		}
		if err != nil {
			return err
		}
		fmt.Printf("sent %d bytes to %s (%s)\n", size, addr, proto)
	}
	return nil
}

func sendTCP(addr string, buf []byte, size int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for left := size; left > 0; {
		n := min(left, len(buf))
		if _, err := c.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	// Wait for the receiver to close: it has then read everything.
	_, err = io.Copy(io.Discard, c)
	return err
}

func sendUDP(addr string, buf []byte, size int) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for left := size; left > 0; {
		n := min(left, len(buf))
		if _, err := c.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

func serve(addr string, echo bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, peer, err := pc.ReadFrom(buf)
			if err != nil {
				fmt.Fprintln(os.Stderr, "app: udp:", err)
				return
			}
			fmt.Printf("udp %s received %d bytes\n", peer, n)
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go handle(c, echo)
	}
}

func handle(c net.Conn, echo bool) {
	defer c.Close()
	dst := io.Discard
	if echo {
		dst = c
	}
	n, err := io.Copy(dst, c)
	if err != nil {
		fmt.Printf("tcp %s error after %d bytes: %v\n", c.RemoteAddr(), n, err)
		return
	}
	fmt.Printf("tcp %s received %d bytes\n", c.RemoteAddr(), n)
}
