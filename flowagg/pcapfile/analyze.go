package pcapfile

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// AnalyzeOptions configures Analyze.
type AnalyzeOptions struct {
	// Top is the number of largest flows to report. Default 10.
	Top int
	// Config is the flow table configuration. Zero fields take offline
	// defaults: 1M flows per interface and in total, no idle expiry.
	Config flowagg.Config
	// Interface names the single interface of a pcap file (pcapng files
	// carry their own names). Default "pcap".
	Interface string
}

// ErrNotCapture is returned for input that is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng file")

// Analyze reads a pcap or pcapng file (optionally gzip-compressed, detected
// by magic number) through the same decoder and flow tables as live capture
// and returns totals and the top flows. Directions come from the pcapng
// EPB flags or the Linux cooked header (outgoing) and are "in" otherwise.
//
// On a corrupt or truncated file it returns the report of the packets read
// before the damage together with an error that says where reading stopped.
// Input that is not a capture file (ErrNotCapture) or whose file header
// cannot be read gives no report at all: nil and the error.
func Analyze(r io.Reader, opts AnalyzeOptions) (*Report, error) {
	if opts.Top <= 0 {
		opts.Top = 10
	}
	if opts.Interface == "" {
		opts.Interface = "pcap"
	}
	cfg := opts.Config
	if cfg.MaxFlowsPerInterface <= 0 {
		cfg.MaxFlowsPerInterface = 1 << 20
	}
	if cfg.MaxFlowsTotal <= 0 {
		cfg.MaxFlowsTotal = 1 << 20
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = -1
	}
	a := &analyzer{agg: flowagg.NewAggregator(cfg), top: opts.Top}

	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("reading capture file header: %w: %w", ErrNotCapture, err)
	}
	if magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading gzip header: %w", err)
		}
		defer gz.Close()
		br = bufio.NewReaderSize(gz, 1<<16)
		if magic, err = br.Peek(4); err != nil {
			return nil, fmt.Errorf("reading capture file header inside gzip: %w: %w", ErrNotCapture, err)
		}
	}
	switch m := binary.LittleEndian.Uint32(magic); m {
	case 0x0a0d0d0a:
		return a.readPcapng(br, opts)
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		return a.readPcap(br, opts)
	default:
		return nil, fmt.Errorf("%w: magic number %08x — give a file written by tcpdump, tshark or dumpcap", ErrNotCapture, m)
	}
}

type analyzer struct {
	agg     *flowagg.Aggregator
	top     int
	packets int
	first   time.Time
	last    time.Time
}

// linkOf maps a pcap link type to the decoder's.
func linkOf(lt layers.LinkType) (decoder.LinkType, bool) {
	switch lt {
	case layers.LinkTypeEthernet:
		return decoder.LinkEthernet, true
	case layers.LinkTypeLinuxSLL:
		return decoder.LinkSLL, true
	case layers.LinkType(276): // LINKTYPE_LINUX_SLL2
		return decoder.LinkSLL2, true
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12, 14:
		return decoder.LinkRaw, true
	}
	return 0, false
}

func (a *analyzer) add(t *flowagg.IfaceTable, link decoder.LinkType, data []byte, ci *gopacket.CaptureInfo, dir decoder.Direction) {
	ts := ci.Timestamp.UnixNano()
	if a.packets == 0 || ci.Timestamp.Before(a.first) {
		a.first = ci.Timestamp
	}
	if ci.Timestamp.After(a.last) {
		a.last = ci.Timestamp
	}
	a.packets++
	t.AddFrame(link, data, ci.Length, dir, ts)
	if a.agg.Config().IdleTimeout > 0 {
		t.Maintain(ts)
	}
}

func (a *analyzer) readPcap(r io.Reader, opts AnalyzeOptions) (*Report, error) {
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("reading pcap file header: %w", err)
	}
	link, ok := linkOf(pr.LinkType())
	if !ok {
		return nil, fmt.Errorf("pcap link type %s (%d) is not supported: capture Ethernet, Linux cooked (-i any) or raw IP", pr.LinkType(), int(pr.LinkType()))
	}
	t := a.agg.Interface(opts.Interface)
	for {
		data, ci, err := pr.ZeroCopyReadPacketData()
		if err == io.EOF {
			return a.report("pcap"), nil
		}
		if err != nil {
			return a.report("pcap"), a.readErr(err)
		}
		a.add(t, link, data, &ci, decoder.DirIn)
	}
}

func (a *analyzer) readPcapng(r io.Reader, opts AnalyzeOptions) (*Report, error) {
	nr, err := pcapgo.NewNgReader(r, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
	if err != nil {
		return nil, fmt.Errorf("reading pcapng section header: %w", err)
	}
	for {
		data, ci, popts, err := nr.ZeroCopyReadPacketDataWithOptions()
		if err == io.EOF {
			return a.report("pcapng"), nil
		}
		if err != nil {
			return a.report("pcapng"), a.readErr(err)
		}
		lt := nr.LinkType()
		if len(ci.AncillaryData) > 0 {
			if l, ok := ci.AncillaryData[0].(layers.LinkType); ok {
				lt = l
			}
		}
		name := opts.Interface
		if ifc, err := nr.Interface(ci.InterfaceIndex); err == nil && ifc.Name != "" {
			name = ifc.Name
		} else if ci.InterfaceIndex > 0 {
			name = fmt.Sprintf("%s%d", opts.Interface, ci.InterfaceIndex)
		}
		t := a.agg.Interface(name)
		link, ok := linkOf(lt)
		if !ok {
			// Count the packet as undecodable rather than failing the file.
			t.AddUndecodable(max(ci.Length, len(data)), decoder.ReasonUnsupportedLink)
			a.packets++
			continue
		}
		dir := decoder.DirIn
		if popts.Flags != nil && popts.Flags.Direction == pcapgo.NgEpbFlagDirectionOutbound {
			dir = decoder.DirOut
		}
		a.add(t, link, data, &ci, dir)
	}
}

// readErr explains an error in the middle of a file.
func (a *analyzer) readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("capture file is truncated after packet %d (the totals cover the packets before it): %w", a.packets, err)
	}
	return fmt.Errorf("capture file is corrupt after packet %d (the totals cover the packets before it): %w", a.packets, err)
}
