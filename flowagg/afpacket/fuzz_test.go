package afpacket

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseBPF feeds arbitrary text to the BPF program parser: it must never
// panic, and what it accepts must be a program the checks accept, that
// prints back (as `tcpdump -ddd` would) to the same program.
//
//	go test -run='^$' -fuzz=FuzzParseBPF -fuzztime=10s ./flowagg/afpacket/
func FuzzParseBPF(f *testing.F) {
	for _, s := range []string{udpDDD, udpDD, strings.ReplaceAll(udpDDD, "\n", ","), ",", "{", "1\n6 0 0 1", "{ 0x6, 0, 0, 1 }", "2\n21 0 5 17\n6 0 0 0\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		prog, err := ParseBPF(text)
		if err != nil || prog == nil {
			if err == nil && strings.TrimSpace(text) != "" {
				t.Fatalf("ParseBPF(%q) = nil program without an error", text)
			}
			return
		}
		if err := checkBPF(prog); err != nil {
			t.Fatalf("ParseBPF(%q) accepted a program checkBPF rejects: %v", text, err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%d\n", len(prog))
		for _, ins := range prog {
			fmt.Fprintf(&b, "%d %d %d %d\n", ins.Op, ins.Jt, ins.Jf, ins.K)
		}
		again, err := ParseBPF(b.String())
		if err != nil || !reflect.DeepEqual(again, prog) {
			t.Fatalf("program of %q does not survive printing as -ddd: %v, %v vs %v", text, err, again, prog)
		}
	})
}
