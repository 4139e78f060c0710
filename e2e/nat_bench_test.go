package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
	"github.com/tangfeixiong/nta/natview"
)

// staticResolver answers with fixed endpoints: the benchmark's container.
type staticResolver struct{ e natview.Endpoints }

func (s staticResolver) Endpoints() (natview.Endpoints, error) { return s.e, nil }

// sendUDP sends one datagram from every port of ports on each source
// address to dst, from inside the namespace: each is a conntrack entry
// DNAT'd to the container (UDP, unreplied: 30 s in the table). It paces
// itself to rate datagrams a second when rate > 0.
func sendUDP(tb testing.TB, ns string, srcs []string, ports [2]int, dst string, rate int) int {
	tb.Helper()
	to, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		tb.Fatal(err)
	}
	sent := 0
	start := time.Now()
	inNetns(tb, ns, func() {
		for _, src := range srcs {
			for p := ports[0]; p < ports[1]; p++ {
				c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(src), Port: p})
				if err != nil {
					continue // port taken in the namespace: skip it
				}
				if _, err := c.WriteTo([]byte("x"), to); err == nil {
					sent++
				}
				c.Close()
				if rate > 0 {
					if ahead := time.Duration(sent)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
						time.Sleep(ahead)
					}
				}
			}
		}
	})
	return sent
}

func procCount(tb testing.TB, name string) int {
	b, err := os.ReadFile("/proc/sys/net/netfilter/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func rssBytes() uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the CPU time (user + system) of the whole test process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func opened(s natview.Snapshot) (n uint64) {
	for _, x := range s.Series {
		n += x.Opened
	}
	return n
}

// BenchmarkNATConntrack100k fills the real conntrack table with 100k
// entries DNAT'd to a container's published port (UDP datagrams from an
// outside namespace), then measures natview's first dump + attribution and
// its memory growth; then 5k new connections a second for 10 s on one core,
// counting lost events. See BENCHMARKS.md for the command.
func BenchmarkNATConntrack100k(b *testing.B) {
	requireNATLab(b)
	image := testimage.Ensure(b)
	o := newOutside(b, 2)
	port := 40000 + int(time.Now().UnixNano()%10000)
	ctr := testimage.RunContainer(b, "nt-natbench", "-p", fmt.Sprintf("%d:80/udp", port), image)
	ctrIP := strings.TrimSpace(testenv.Run(b, "docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", ctr))
	ctrID := strings.TrimSpace(testenv.Run(b, "docker", "inspect", "-f", "{{.Id}}", ctr))
	ct := natview.Container{ID: ctrID, Name: ctr}
	res := staticResolver{natview.Endpoints{
		Containers: map[netip.Addr]natview.Container{netip.MustParseAddr(ctrIP): ct},
		Ports:      []natview.Port{{Container: ct, HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: uint16(port), ContainerPort: 80, Proto: 17}},
	}}
	dst := fmt.Sprintf("%s:%d", o.hostIP, port)

	// The real exporter, started before the table fills: its RSS growth
	// while it takes in 100k NEW events and re-dumps the full table.
	e := testenv.StartExporter(b, "--no-collector.libvirt")
	testenv.Eventually(b, "nat collector up", 15*time.Second, func() error {
		if v := e.Scrape().One(b, "nta_collector_success", map[string]string{"collector": "nat"}).Value; v != 1 {
			return fmt.Errorf("nat success %v", v)
		}
		return nil
	})
	exporterRSS := func() float64 {
		b.Helper()
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.Cmd.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				return kb / 1024
			}
		}
		return 0
	}
	rssStart := exporterRSS()

	base := procCount(b, "nf_conntrack_count")
	begin := time.Now()
	sent := sendUDP(b, o.ns, []string{o.nsIP, o.extra[0]}, [2]int{10000, 60000}, dst, 0)
	b.Logf("sent %d datagrams in %v; conntrack entries %d → %d (limit %d)", sent, time.Since(begin).Round(time.Millisecond),
		base, procCount(b, "nf_conntrack_count"), procCount(b, "nf_conntrack_max"))

	var tracked float64
	testenv.Eventually(b, "the exporter tracks the 100k connections after a re-dump", 30*time.Second, func() error {
		m := e.Scrape()
		tracked = m.One(b, "nta_nat_tracked_connections", map[string]string{"state": "attributed"}).Value
		if tracked < float64(sent) {
			return fmt.Errorf("%v attributed of %d", tracked, sent)
		}
		return nil
	})
	time.Sleep(11 * time.Second) // one periodic re-dump (10 s) of the full table
	m := e.Scrape()
	rssFull := exporterRSS()
	b.Logf("exporter: RSS %.1f MiB before, %.1f MiB with %v NAT'd connections tracked (growth %.1f MiB); %v receive errors, last re-dump %.0f ms",
		rssStart, rssFull, tracked, rssFull-rssStart, m.One(b, "nta_nat_receive_errors_total", nil).Value,
		1000*m.One(b, "nta_nat_dump_duration_seconds", nil).Value)
	b.ReportMetric(rssFull-rssStart, "exporter_rss_MiB")
	if rssFull-rssStart > 50 {
		b.Errorf("exporter RSS grew %.1f MiB (< 50 MiB)", rssFull-rssStart)
	}

	// The reference: the conntrack CLI reading the same table.
	ref := time.Now()
	lines := strings.Count(stdout(b, "conntrack", "-L"), "\n")
	b.Logf("reference: conntrack -L lists %d entries in %v", lines, time.Since(ref).Round(time.Millisecond))

	// The floor: the kernel's dump of the same table into a reused buffer
	// with nothing decoded (the same DNAT status filter as natview's first
	// dump), twice.
	for range 2 {
		n, size, took, cpu := rawConntrackDump(b, ipsDstNAT, ipsDstNAT)
		b.Logf("reference: raw dump (recvmsg only, nothing decoded) of %d entries (%.1f MiB) in %v wall, %v CPU", n, float64(size)/(1<<20), took.Round(time.Millisecond), cpu.Round(time.Millisecond))
		b.ReportMetric(float64(took.Milliseconds()), "raw_dump_ms")
	}
	n, _, took, _ := rawConntrackDump(b, ipsSrcNAT, ipsSrcNAT|ipsDstNAT)
	b.Logf("reference: raw dump of the SNAT'd, not DNAT'd entries (natview's second dump): %d entries in %v", n, took.Round(time.Microsecond))

	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rss0 := rssBytes()
		cpu0 := cpuTime()
		w, err := natview.New(natview.Options{Resolver: res, Resync: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.Run(ctx); close(done) }()
		var s natview.Snapshot
		testenv.Eventually(b, "first dump", 30*time.Second, func() error {
			s, err = w.Snapshot()
			return err
		})
		cpu := cpuTime() - cpu0
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
		rss := float64(int64(rssBytes())-int64(rss0)) / (1 << 20)
		dump := s.Health.DumpDuration
		b.Logf("dump+attribution of %v entries (%d NAT'd, %d attributed): %v wall, %v CPU of the process until the first snapshot; heap growth %.1f MiB, RSS growth %.1f MiB",
			s.Health.Entries, s.Health.Tracked, opened(s), dump.Round(time.Millisecond), cpu.Round(time.Millisecond), heap, rss)
		b.ReportMetric(float64(cpu.Milliseconds()), "cpu_ms")
		b.ReportMetric(float64(dump.Milliseconds()), "dump_ms")
		b.ReportMetric(heap, "heap_MiB")
		b.ReportMetric(rss, "rss_MiB")
		// The target for the dump is 200 ms; on the project's
		// 2-core VMs the kernel's side of the dump alone (recvmsg) is about
		// 190 ms of CPU, so the time is reported, not failed (BENCHMARKS.md).
		if dump > 200*time.Millisecond {
			b.Logf("dump %v is over the 200 ms target", dump.Round(time.Millisecond))
		}
		if heap > 50 || rss > 50 {
			b.Errorf("memory over budget: heap %.1f MiB, RSS %.1f MiB (< 50 MiB)", heap, rss)
		}
		if opened(s) < uint64(sent) {
			b.Errorf("attributed %d of %d DNAT'd entries", opened(s), sent)
		}

		// Sustained: 5k new connections a second for 10 s, exporter on one core.
		if os.Getenv("NTA_BENCH_SKIP_SUSTAINED") != "" {
			cancel()
			<-done
			continue
		}
		prev := runtime.GOMAXPROCS(1)
		before2, lost0 := opened(s), s.Health.ReceiveErrors
		n := sendUDP(b, o.ns, []string{o.extra[1]}, [2]int{10000, 60000}, dst, 5000)
		time.Sleep(time.Second)
		s, err = w.Snapshot()
		runtime.GOMAXPROCS(prev)
		if err != nil {
			b.Fatal(err)
		}
		got := opened(s) - before2
		b.Logf("sustained: %d new connections at 5k/s on one core: %d attributed from events, receive errors %d, events lost %d",
			n, got, s.Health.ReceiveErrors-lost0, s.Health.EventsLost)
		b.ReportMetric(float64(s.Health.ReceiveErrors-lost0), "receive_errors")
		if got != uint64(n) || s.Health.ReceiveErrors != lost0 {
			b.Errorf("sustained 5k/s: %d of %d attributed, %d receive errors", got, n, s.Health.ReceiveErrors-lost0)
		}
		cancel()
		<-done
	}
}

// Conntrack status bits (IPS_SRC_NAT, IPS_DST_NAT).
const ipsSrcNAT, ipsDstNAT = 1 << 4, 1 << 5

// rawConntrackDump reads the entries with status&mask == status of the conntrack table the way
// the kernel hands them out, counting messages and nothing else: what any
// reader pays before decoding a byte. It returns the entries, their bytes,
// the wall time and the thread's CPU time (kernel and user).
func rawConntrackDump(tb testing.TB, status, mask uint32) (entries, size int, took, cpu time.Duration) {
	tb.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_NETFILTER)
	if err != nil {
		tb.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		tb.Fatal(err)
	}
	// nlmsghdr, nfgenmsg, CTA_STATUS and CTA_STATUS_MASK.
	req := make([]byte, 16+4+8+8)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], 1<<8|1) // NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET
	binary.NativeEndian.PutUint16(req[6:], syscall.NLM_F_REQUEST|syscall.NLM_F_DUMP)
	req[16] = syscall.AF_UNSPEC
	for i, a := range []struct {
		typ uint16
		v   uint32
	}{{3, status}, {26, mask}} { // CTA_STATUS, CTA_STATUS_MASK
		b := req[20+8*i:]
		binary.NativeEndian.PutUint16(b[0:], 8)
		binary.NativeEndian.PutUint16(b[2:], a.typ)
		binary.BigEndian.PutUint32(b[4:], a.v)
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(1, &ru0) // RUSAGE_THREAD
	start := time.Now()
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			tb.Fatal(err)
		}
		size += n
		for b := buf[:n]; len(b) >= 16; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < 16 || l > len(b) {
				tb.Fatalf("conntrack dump: malformed message of length %d (%d bytes left)", l, len(b))
			}
			switch typ := binary.NativeEndian.Uint16(b[4:]); typ {
			case syscall.NLMSG_DONE:
				if code := int32(binary.NativeEndian.Uint32(b[16:])); l >= 20 && code < 0 {
					tb.Fatalf("conntrack dump: %v", syscall.Errno(-code))
				}
				took = time.Since(start)
				_ = syscall.Getrusage(1, &ru1)
				cpu = time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
				return entries, size, took, cpu
			case syscall.NLMSG_ERROR:
				tb.Fatalf("conntrack dump: netlink error %d", int32(binary.NativeEndian.Uint32(b[16:])))
			default:
				entries++
			}
			b = b[min((l+3)&^3, len(b)):]
		}
	}
}
