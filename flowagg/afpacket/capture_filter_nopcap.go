//go:build !pcap || !cgo

package afpacket

import "golang.org/x/net/bpf"

// CompileFilter would compile a tcpdump filter expression, but this build has
// no libpcap: it returns ErrFilterNeedsPcap for a non-empty expression. Use
// ParseBPF with the output of `tcpdump -ddd EXPR`, or build with -tags pcap.
func CompileFilter(expr string, snaplen int) ([]bpf.RawInstruction, error) {
	if expr == "" {
		return nil, nil
	}
	return nil, ErrFilterNeedsPcap
}
