package pcapfile

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/decoder"
)

// Report is the result of Analyze.
type Report struct {
	Format     string        `json:"format"` // "pcap" or "pcapng"
	Packets    uint64        `json:"packets"`
	Bytes      uint64        `json:"bytes"`
	First      time.Time     `json:"first,omitzero"`
	Last       time.Time     `json:"last,omitzero"`
	Interfaces []IfaceReport `json:"interfaces"`
	TopFlows   []FlowReport  `json:"top_flows"`
}

// IfaceReport holds the totals of one interface of the file.
type IfaceReport struct {
	Name         string            `json:"name"`
	Total        flowagg.Counter   `json:"total"`
	IP           flowagg.Counter   `json:"ip"`
	NonIP        flowagg.Counter   `json:"non_ip"`
	Errors       flowagg.Counter   `json:"decode_errors"`
	Flows        int               `json:"flows"`
	Overflow     flowagg.Counter   `json:"overflow"`
	Folded       uint64            `json:"folded_flows"`
	ErrorReasons map[string]uint64 `json:"decode_error_reasons,omitempty"`
	EtherTypes   map[string]uint64 `json:"ethertypes,omitempty"`
	ARPBindings  int               `json:"arp_bindings"`
	ARPConflicts uint64            `json:"arp_conflicts"`
}

// FlowReport is one flow of the top list.
type FlowReport struct {
	Interface string    `json:"interface"`
	Direction string    `json:"direction"`
	Proto     string    `json:"proto"`
	Src       string    `json:"src"`
	SrcPort   string    `json:"src_port"`
	Dst       string    `json:"dst"`
	DstPort   string    `json:"dst_port"`
	Packets   uint64    `json:"packets"`
	Bytes     uint64    `json:"bytes"`
	First     time.Time `json:"first"`
	Last      time.Time `json:"last"`
}

// report builds the Report from the tables (all owned by this goroutine).
func (a *analyzer) report(format string) *Report {
	rep := &Report{Format: format, First: a.first, Last: a.last,
		Interfaces: []IfaceReport{}, TopFlows: []FlowReport{}}
	var flows []FlowReport
	for _, t := range a.agg.Tables() {
		s := t.SnapshotAt(a.last.UnixNano())
		ir := IfaceReport{
			Name: s.Interface, Total: s.Total, NonIP: s.NonIP, Errors: s.Errors,
			Flows: len(s.Flows), Folded: s.Folded + s.Evicted,
			ErrorReasons: map[string]uint64{}, EtherTypes: map[string]uint64{},
			ARPBindings: len(s.ARPBindings),
		}
		ir.IP = s.FlowSum()
		ir.Overflow.AddCounter(s.Overflow[0])
		ir.Overflow.AddCounter(s.Overflow[1])
		for r, n := range s.DecodeErrors {
			if n > 0 {
				ir.ErrorReasons[decoder.Reason(r).String()] = n
			}
		}
		for _, e := range s.EtherTypes {
			ir.EtherTypes[e.Label] = e.Packets
		}
		for _, c := range s.ARPConflicts {
			ir.ARPConflicts += c.Conflicts
		}
		rep.Packets += s.Total.Packets
		rep.Bytes += s.Total.Bytes
		rep.Interfaces = append(rep.Interfaces, ir)
		for i := range s.Flows {
			f := &s.Flows[i]
			flows = append(flows, FlowReport{
				Interface: s.Interface, Direction: f.Key.Dir.String(), Proto: decoder.ProtoName(f.Key.Proto),
				Src: f.Key.SrcAddr().String(), SrcPort: f.Key.SrcPortLabel(),
				Dst: f.Key.DstAddr().String(), DstPort: f.Key.DstPortLabel(),
				Packets: f.Packets, Bytes: f.Bytes,
				First: time.Unix(0, f.First).UTC(), Last: time.Unix(0, f.Last).UTC(),
			})
		}
	}
	slices.SortFunc(flows, func(x, y FlowReport) int {
		if c := cmp.Compare(y.Bytes, x.Bytes); c != 0 {
			return c
		}
		if c := cmp.Compare(y.Packets, x.Packets); c != 0 {
			return c
		}
		return x.First.Compare(y.First)
	})
	if len(flows) > a.top {
		flows = flows[:a.top]
	}
	rep.TopFlows = append(rep.TopFlows, flows...)
	return rep
}

// jsonTime writes a timestamp as time.Time does (RFC 3339 with
// nanoseconds, UTC) but for any year: time.Time's MarshalJSON fails outside
// years 0-9999, which a corrupt or crafted capture file reaches easily, and
// the text report prints such years too.
type jsonTime time.Time

func (t jsonTime) IsZero() bool { return time.Time(t).IsZero() }

func (t jsonTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format(time.RFC3339Nano))
}

// MarshalJSON writes the report with timestamps of any year (see jsonTime).
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		plain
		First jsonTime `json:"first,omitzero"`
		Last  jsonTime `json:"last,omitzero"`
	}{plain(r), jsonTime(r.First), jsonTime(r.Last)})
}

// MarshalJSON writes the flow with timestamps of any year (see jsonTime).
func (f FlowReport) MarshalJSON() ([]byte, error) {
	type plain FlowReport
	return json.Marshal(struct {
		plain
		First jsonTime `json:"first"`
		Last  jsonTime `json:"last"`
	}{plain(f), jsonTime(f.First), jsonTime(f.Last)})
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people: totals, one line per interface,
// then the top flows.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "format:\t%s\n", r.Format)
	fmt.Fprintf(tw, "packets:\t%d\n", r.Packets)
	fmt.Fprintf(tw, "bytes:\t%d\n", r.Bytes)
	if !r.First.IsZero() {
		fmt.Fprintf(tw, "first:\t%s\n", r.First.UTC().Format(time.RFC3339Nano))
		fmt.Fprintf(tw, "last:\t%s\n", r.Last.UTC().Format(time.RFC3339Nano))
		fmt.Fprintf(tw, "duration:\t%s\n", r.Last.Sub(r.First))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "INTERFACE\tPACKETS\tBYTES\tIP PACKETS\tNON-IP\tERRORS\tFLOWS\tOVERFLOW PACKETS\tARP CONFLICTS")
	for _, i := range r.Interfaces {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", i.Name, i.Total.Packets, i.Total.Bytes,
			i.IP.Packets, i.NonIP.Packets, i.Errors.Packets, i.Flows, i.Overflow.Packets, i.ARPConflicts)
	}
	fmt.Fprintln(tw)
	details := false
	for _, i := range r.Interfaces {
		details = details || len(i.ErrorReasons)+len(i.EtherTypes) > 0
		for _, k := range slices.Sorted(maps.Keys(i.ErrorReasons)) {
			fmt.Fprintf(tw, "%s\tdecode error\t%s\t%d\n", i.Name, k, i.ErrorReasons[k])
		}
		for _, k := range slices.Sorted(maps.Keys(i.EtherTypes)) {
			fmt.Fprintf(tw, "%s\tethertype\t%s\t%d\n", i.Name, k, i.EtherTypes[k])
		}
	}
	if details {
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, "INTERFACE\tDIR\tPROTO\tSOURCE\tDESTINATION\tPACKETS\tBYTES\tDURATION")
	for _, f := range r.TopFlows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", f.Interface, f.Direction, f.Proto,
			hostPort(f.Src, f.SrcPort), hostPort(f.Dst, f.DstPort), f.Packets, f.Bytes, f.Last.Sub(f.First))
	}
	return tw.Flush()
}

func hostPort(h, p string) string {
	if p == "" {
		return h
	}
	return net.JoinHostPort(h, p)
}
