//go:build pcap && cgo

package afpacket

import (
	"fmt"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// CompileFilter compiles a tcpdump filter expression for Ethernet frames with
// libpcap (this build has the pcap tag and cgo).
func CompileFilter(expr string, snaplen int) ([]bpf.RawInstruction, error) {
	if expr == "" {
		return nil, nil
	}
	ins, err := pcap.CompileBPFFilter(layers.LinkTypeEthernet, snaplen, expr)
	if err != nil {
		return nil, fmt.Errorf("capture filter %q: %w — check the tcpdump filter syntax (man pcap-filter)", expr, err)
	}
	prog := make([]bpf.RawInstruction, len(ins))
	for i, in := range ins {
		prog[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return prog, checkBPF(prog)
}
