//go:build linux

package afpacket

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// Helpers of the privileged capture tests: each test makes its own network
// namespace and veth pair, and sends crafted frames only from that namespace
// to the host end of its own veth.

// requirePrivileged skips (or, with CI=true, fails) unless the test runs as
// root with iproute2 installed.
func requirePrivileged(t *testing.T) {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		missing = "iproute2 (ip)"
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("capture test needs %s, and CI=true makes that a failure", missing)
	}
	t.Skipf("capture test needs %s", missing)
}

var vethSeq atomic.Int32

// testVeth is a veth pair: host end in the test's namespace (the host),
// peer in a namespace made for the test.
type testVeth struct {
	host, peer, netns string
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newVeth creates the namespace and the veth pair with IPv6 off on both ends
// (no router solicitations, DAD or MLD frames), so the only frames on the link
// are the ones the test sends.
func newVeth(t *testing.T) testVeth {
	t.Helper()
	n := vethSeq.Add(1)
	v := testVeth{
		host:  fmt.Sprintf("ntc%d_%d", os.Getpid()%100000, n),
		peer:  fmt.Sprintf("ntp%d_%d", os.Getpid()%100000, n),
		netns: fmt.Sprintf("nta-captest-%d-%d", os.Getpid(), n),
	}
	run(t, "ip", "netns", "add", v.netns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", v.host).Run()
		_ = exec.Command("ip", "netns", "del", v.netns).Run()
	})
	run(t, "ip", "link", "add", v.host, "type", "veth", "peer", "name", v.peer, "netns", v.netns)
	run(t, "sysctl", "-qw", "net.ipv6.conf."+v.host+".disable_ipv6=1")
	run(t, "ip", "netns", "exec", v.netns, "sysctl", "-qw", "net.ipv6.conf."+v.peer+".disable_ipv6=1")
	run(t, "ip", "link", "set", v.host, "up")
	run(t, "ip", "-n", v.netns, "link", "set", v.peer, "up")
	return v
}

// linkStats reads the host end's counters with `ip -s -j`, independently of the capture.
func (v testVeth) linkStats(t *testing.T) (rxPackets, rxBytes uint64) {
	t.Helper()
	l, ok := testenv.IPLinks(t)[v.host]
	if !ok {
		t.Fatalf("ip -j link: no %s", v.host)
	}
	return l.Stats64.Rx.Packets, l.Stats64.Rx.Bytes
}

// sender returns a function that sends one Ethernet frame out of the peer end,
// through an AF_PACKET socket created inside the test's namespace.
func (v testVeth) sender(t *testing.T) func(frame []byte) {
	t.Helper()
	fd, ifindex := -1, 0
	errc := make(chan error, 1)
	go func() {
		// A thread that fails to get back to the host namespace stays locked
		// and dies with this goroutine.
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open("/var/run/netns/" + v.netns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			var ifi *net.Interface
			if ifi, err = net.InterfaceByName(v.peer); err == nil {
				ifindex = ifi.Index
			}
		}
		if err2 := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err2 != nil {
			errc <- fmt.Errorf("back to own netns: %w", err2)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("sender socket in %s: %v", v.netns, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	sa := &unix.SockaddrLinklayer{Ifindex: ifindex}
	sent := 0
	return func(frame []byte) {
		if err := unix.Sendto(fd, frame, 0, sa); err != nil {
			t.Fatalf("send on %s: %v", v.peer, err)
		}
		// Stay well inside netdev_max_backlog so the host end sees every frame.
		if sent++; sent%200 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// Frames go to a MAC address that is not the host end's and to 198.18.0.0/15
// (benchmarking range): the host's IP stack drops them as PACKET_OTHERHOST,
// so nothing is forwarded anywhere.
var (
	testDstMAC = []byte{0x02, 0x6e, 0x74, 0x61, 0x00, 0x02}
	testSrcMAC = []byte{0x02, 0x6e, 0x74, 0x61, 0x00, 0x01}
)

// l4Frame builds an Ethernet/IPv4 frame of size bytes (size >= 42) carrying
// UDP (proto 17) or TCP (proto 6, size >= 54) between 198.18.0.1 and 198.18.0.2.
func l4Frame(proto byte, srcPort, dstPort uint16, size int) []byte {
	be := binary.BigEndian
	f := make([]byte, size)
	copy(f[0:], testDstMAC)
	copy(f[6:], testSrcMAC)
	be.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	be.PutUint16(ip[2:], uint16(size-14))
	ip[8] = 64
	ip[9] = proto
	copy(ip[12:], []byte{198, 18, 0, 1})
	copy(ip[16:], []byte{198, 18, 0, 2})
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(be.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	be.PutUint16(ip[10:], ^uint16(sum))
	l4 := ip[20:]
	be.PutUint16(l4[0:], srcPort)
	be.PutUint16(l4[2:], dstPort)
	if proto == 17 {
		be.PutUint16(l4[4:], uint16(size-34))
	} else {
		l4[12] = 5 << 4 // TCP data offset
		l4[13] = 0x10   // ACK
	}
	return f
}
