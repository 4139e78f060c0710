package afpacket

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// Capture filters.
//
// Compiling tcpdump expressions needs libpcap's compiler, that is cgo. The
// default build stays pure Go and static, so there are two ways to filter:
//
//   - ParseBPF reads a compiled program as printed by `tcpdump -ddd EXPR`
//     (decimal) or `tcpdump -dd EXPR` (C array), e.g.
//     --collector.flow.filter-bpf="$(tcpdump -i eth0 -ddd 'udp port 53')".
//     Compile with a link type of Ethernet (any Ethernet interface, not "any").
//   - CompileFilter compiles a tcpdump expression when the binary is built with
//     `-tags pcap` and CGO_ENABLED=1 (needs libpcap-dev); otherwise it returns
//     ErrFilterNeedsPcap, which says the above.

// ErrFilterNeedsPcap is returned by CompileFilter in builds without libpcap.
var ErrFilterNeedsPcap = errors.New("compiling tcpdump filter expressions needs libpcap: " +
	"pass the output of `tcpdump -i <ethernet-if> -ddd '<expr>'` as a raw BPF program instead, " +
	"or build with CGO_ENABLED=1 -tags pcap (libpcap-dev installed)")

// ParseBPF parses a classic BPF program in the formats tcpdump prints:
// `-ddd` (first line the instruction count, then "code jt jf k" in decimal,
// one instruction per line or all on one line) or `-dd` ("{ 0x28, 0, 0, 0x0000000c },").
func ParseBPF(text string) ([]bpf.RawInstruction, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	if strings.Contains(text, "{") {
		return parseBPFArray(text)
	}
	fields := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("BPF program %q holds no number: give the output of `tcpdump -ddd EXPR`", text)
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 || n > maxBPFInsns {
		return nil, fmt.Errorf("BPF program: first number must be the instruction count as printed by `tcpdump -ddd`, got %q (1 to %d)", fields[0], maxBPFInsns)
	}
	if len(fields)-1 != 4*n {
		return nil, fmt.Errorf("BPF program: count says %d instructions but %d numbers follow (want 4 per instruction, `tcpdump -ddd` format)", n, len(fields)-1)
	}
	prog := make([]bpf.RawInstruction, n)
	for i := range prog {
		var v [4]uint64
		for j := range v {
			v[j], err = strconv.ParseUint(fields[1+4*i+j], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("BPF program: instruction %d: %w", i, err)
			}
		}
		if prog[i], err = rawInstruction(v); err != nil {
			return nil, fmt.Errorf("BPF program: instruction %d: %w", i, err)
		}
	}
	return prog, checkBPF(prog)
}

func parseBPFArray(text string) ([]bpf.RawInstruction, error) {
	var prog []bpf.RawInstruction
	for _, part := range strings.Split(text, "{")[1:] {
		body, _, ok := strings.Cut(part, "}")
		if !ok {
			return nil, fmt.Errorf("BPF program: unterminated { in `tcpdump -dd` output")
		}
		nums := strings.Split(body, ",")
		if len(nums) != 4 {
			return nil, fmt.Errorf("BPF program: instruction %d: want { code, jt, jf, k }, got {%s}", len(prog), body)
		}
		var v [4]uint64
		for j, s := range nums {
			var err error
			if v[j], err = strconv.ParseUint(strings.TrimSpace(s), 0, 32); err != nil {
				return nil, fmt.Errorf("BPF program: instruction %d: %w", len(prog), err)
			}
		}
		ins, err := rawInstruction(v)
		if err != nil {
			return nil, fmt.Errorf("BPF program: instruction %d: %w", len(prog), err)
		}
		prog = append(prog, ins)
	}
	return prog, checkBPF(prog)
}

func rawInstruction(v [4]uint64) (bpf.RawInstruction, error) {
	if v[0] > 0xffff || v[1] > 0xff || v[2] > 0xff {
		return bpf.RawInstruction{}, fmt.Errorf("code %d, jt %d, jf %d out of range", v[0], v[1], v[2])
	}
	return bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}, nil
}

// maxBPFInsns is the kernel's BPF_MAXINSNS.
const maxBPFInsns = 4096

// checkBPF does the checks the kernel would reject with a bare EINVAL.
func checkBPF(prog []bpf.RawInstruction) error {
	if len(prog) == 0 || len(prog) > maxBPFInsns {
		return fmt.Errorf("BPF program of %d instructions: must have 1 to %d", len(prog), maxBPFInsns)
	}
	for i, ins := range prog {
		if ins.Op&0x07 != 0x05 { // not BPF_JMP
			continue
		}
		far := i + 1 + max(int(ins.Jt), int(ins.Jf))
		if ins.Op&0xf0 == 0 { // BPF_JA
			far = i + 1 + int(ins.K)
		}
		if far >= len(prog) {
			return fmt.Errorf("BPF program: instruction %d jumps past the end", i)
		}
	}
	if last := prog[len(prog)-1].Op; last&0x07 != 0x06 { // BPF_RET
		return errors.New("BPF program: last instruction must be a return")
	}
	return nil
}

// socketFilter returns the program attached to capture sockets: the user's
// filter with every "return k" (k > 0) lowered to snaplen, or a single
// "return snaplen" when there is no filter. This is how a TPACKET_V3 ring gets
// a snap length: the kernel copies min(frame, filter result) bytes.
func socketFilter(user []bpf.RawInstruction, snaplen int) []bpf.RawInstruction {
	const retK = 0x06 // BPF_RET | BPF_K
	if len(user) == 0 {
		return []bpf.RawInstruction{{Op: retK, K: uint32(snaplen)}}
	}
	prog := make([]bpf.RawInstruction, len(user))
	copy(prog, user)
	for i := range prog {
		if prog[i].Op == retK && prog[i].K > uint32(snaplen) {
			prog[i].K = uint32(snaplen)
		}
	}
	return prog
}
