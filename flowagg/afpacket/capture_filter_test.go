package afpacket

import (
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// Output of `tcpdump -i eth0 -ddd udp` (tcpdump 4.99, libpcap 1.10).
const udpDDD = `12
40 0 0 12
21 0 2 2048
48 0 0 23
21 6 7 17
21 0 6 34525
48 0 0 20
21 3 0 17
21 0 3 44
48 0 0 54
21 0 1 17
6 0 0 262144
6 0 0 0
`

// The same program as `tcpdump -dd udp` prints it.
const udpDD = `{ 0x28, 0, 0, 0x0000000c },
{ 0x15, 0, 2, 0x00000800 },
{ 0x30, 0, 0, 0x00000017 },
{ 0x15, 6, 7, 0x00000011 },
{ 0x15, 0, 6, 0x000086dd },
{ 0x30, 0, 0, 0x00000014 },
{ 0x15, 3, 0, 0x00000011 },
{ 0x15, 0, 3, 0x0000002c },
{ 0x30, 0, 0, 0x00000036 },
{ 0x15, 0, 1, 0x00000011 },
{ 0x6, 0, 0, 0x00040000 },
{ 0x6, 0, 0, 0x00000000 },
`

func TestParseBPFFormats(t *testing.T) {
	ddd, err := ParseBPF(udpDDD)
	if err != nil {
		t.Fatalf("-ddd: %v", err)
	}
	dd, err := ParseBPF(udpDD)
	if err != nil {
		t.Fatalf("-dd: %v", err)
	}
	if !reflect.DeepEqual(ddd, dd) {
		t.Fatalf("-ddd and -dd parse differently:\n%v\n%v", ddd, dd)
	}
	oneLine, err := ParseBPF(strings.ReplaceAll(udpDDD, "\n", ","))
	if err != nil || !reflect.DeepEqual(oneLine, ddd) {
		t.Fatalf("comma-separated -ddd: %v, %v", oneLine, err)
	}
	if got, err := ParseBPF("  \n"); got != nil || err != nil {
		t.Errorf("empty program = %v, %v; want nil, nil", got, err)
	}
}

// TestParseBPFBehaviour runs the parsed program, lowered to a snaplen, on frames.
func TestParseBPFBehaviour(t *testing.T) {
	prog, err := ParseBPF(udpDDD)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(rawToInstructions(t, socketFilter(prog, 128)))
	if err != nil {
		t.Fatal(err)
	}
	udp := testFrame(17, 1000)
	tcp := testFrame(6, 1000)
	if n, err := vm.Run(udp); err != nil || n != 128 {
		t.Errorf("UDP frame: accepted %d bytes (%v), want 128 (snaplen)", n, err)
	}
	if n, err := vm.Run(tcp); err != nil || n != 0 {
		t.Errorf("TCP frame: accepted %d bytes (%v), want 0", n, err)
	}
	if prog[10].K != 262144 {
		t.Errorf("socketFilter modified its input")
	}
}

func TestParseBPFErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"3\n6 0 0 1\n", "count says 3"},
		{"udp", "instruction count"},
		{"2\n6 0 0 0\n7 0 0 0\n", "last instruction must be a return"},
		{"2\n21 0 5 17\n6 0 0 0\n", "jumps past the end"},
		{"1\n70000 0 0 0\n", "out of range"},
		{"{ 0x6, 0, 0 },", "want { code, jt, jf, k }"},
		{",", "holds no number"},
		{" ,\n,\t", "holds no number"},
		{"{", "unterminated {"},
		{"99999\n6 0 0 0", "instruction count"},
	} {
		if _, err := ParseBPF(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseBPF(%q) error = %v, want it to say %q", tc.in, err, tc.want)
		}
	}
}

func TestSocketFilterDefault(t *testing.T) {
	got := socketFilter(nil, 256)
	if want := []bpf.RawInstruction{{Op: 0x06, K: 256}}; !reflect.DeepEqual(got, want) {
		t.Errorf("socketFilter(nil) = %v, want %v", got, want)
	}
}

func TestCompileFilter(t *testing.T) {
	prog, err := CompileFilter("udp", 256)
	if errors.Is(err, ErrFilterNeedsPcap) { // default, pure-Go build
		if !strings.Contains(err.Error(), "tcpdump") || !strings.Contains(err.Error(), "-tags pcap") {
			t.Errorf("error does not say what to do: %v", err)
		}
		return
	}
	// -tags pcap build: libpcap must produce what tcpdump printed, with the snaplen.
	want, _ := ParseBPF(udpDDD)
	if err != nil || !reflect.DeepEqual(prog, socketFilter(want, 256)) {
		t.Fatalf("pcap build: CompileFilter(udp) = %v, %v; want %v", prog, err, socketFilter(want, 256))
	}
	if _, err := CompileFilter("udp and", 256); err == nil || !strings.Contains(err.Error(), "pcap-filter") {
		t.Errorf("bad expression: err = %v, want a pointer to pcap-filter syntax", err)
	}
}

// TestParseBPFMatchesTcpdump compares with the tcpdump installed here, if any.
func TestParseBPFMatchesTcpdump(t *testing.T) {
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump not installed")
	}
	for _, expr := range []string{"udp", "tcp port 80 or icmp", "vlan and ip6"} {
		ddd, err1 := exec.Command(path, "-y", "EN10MB", "-ddd", expr).Output()
		dd, err2 := exec.Command(path, "-y", "EN10MB", "-dd", expr).Output()
		if err1 != nil || err2 != nil {
			t.Skipf("tcpdump cannot compile without an interface here: %v %v", err1, err2)
		}
		a, err := ParseBPF(string(ddd))
		if err != nil {
			t.Fatalf("%q -ddd: %v", expr, err)
		}
		b, err := ParseBPF(string(dd))
		if err != nil {
			t.Fatalf("%q -dd: %v", expr, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%q: -ddd and -dd differ", expr)
		}
	}
}

func rawToInstructions(t *testing.T, raw []bpf.RawInstruction) []bpf.Instruction {
	t.Helper()
	out := make([]bpf.Instruction, len(raw))
	for i, r := range raw {
		out[i] = r.Disassemble()
	}
	return out
}

// testFrame is an Ethernet/IPv4 frame of size bytes with the given IP protocol.
func testFrame(proto byte, size int) []byte {
	f := make([]byte, size)
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 2})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 1})
	f[12], f[13] = 0x08, 0x00
	f[14] = 0x45
	tot := size - 14
	f[16], f[17] = byte(tot>>8), byte(tot)
	f[22] = 64
	f[23] = proto
	copy(f[26:30], []byte{198, 18, 0, 1})
	copy(f[30:34], []byte{198, 18, 0, 2})
	return f
}
