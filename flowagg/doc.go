// Package flowagg turns captured link-layer frames into per-interface flow
// counters with a hard cardinality budget, and exports them to Prometheus.
//
// The pieces, in the order a frame meets them:
//
//   - decode.go: a hand-written parser over the raw []byte (Ethernet, 802.1Q,
//     QinQ, IPv4 with fragments, IPv6 with extension headers, TCP, UDP, SCTP,
//     DCCP, UDP-Lite, ICMP, ICMPv6, ARP; Linux cooked and raw IP for pcap
//     files). It writes a FlowKey on the stack and never allocates.
//   - table.go and index.go: IfaceTable, one per captured interface (or
//     fanout socket), owned by exactly one goroutine (its capture loop). The
//     hot path (Add) takes no lock and no atomic read-modify-write; flows sit
//     in a dense slice found through an open-addressing index.
//   - budget.go and maintain.go: the per-interface and total flow budget (the
//     smallest flows are folded into one overflow series so sums stay exact),
//     idle expiry and the rebuild that gives memory back after a flood.
//   - snapshot.go: scrapes ask a table for a snapshot; the owning goroutine
//     copies its flows at its next Publish and hands the copy over through an
//     atomic pointer, so a scrape never holds a lock the capture loop needs.
//   - arp.go: IP→MAC bindings seen in ARP and conflicting claims.
//   - metrics.go and flowseries.go: Collector, a prometheus.Collector over
//     an Aggregator; METRICS.md documents every family.
//   - metrics_text.go: FlowFamilies, the two flow families written straight
//     to the text exposition format (what Prometheus scrapes), byte-identical
//     to client_golang's output and several times cheaper at 100k series.
//   - analyze.go: Analyze, the offline path for pcap and pcapng files, through
//     the same decoder and tables.
//
// Why not gopacket's DecodingLayerParser: even in its "no allocation" mode it
// decodes every layer into a full struct (options, payload slices, checksums),
// dispatches through interfaces per layer, and reports unsupported layers with
// an error value that callers typically format; at 5 Mpps per core (200 ns per
// packet for decode and aggregation together) that overhead dominates. We need
// six fields, so we read six fields. gopacket/layers is still used in the tests
// to build frames independently of this parser, and gopacket/pcapgo reads files.
//
// Byte counts are wire lengths: the length of the frame as it was on the wire
// (AF_PACKET tp_len, pcap orig_len), including the link-layer header and
// excluding the FCS, whatever the snap length cut from the captured bytes.
package flowagg
