// Package flowagg holds the per-interface flow tables that captured frames
// are counted into, with a hard cardinality budget.
//
// The pieces, in the order a frame meets them:
//
//   - package decoder parses the frame (it never allocates) into a FlowKey.
//   - table.go and index.go: IfaceTable, one per captured interface (or
//     fanout socket), owned by exactly one goroutine (its capture loop). The
//     hot path (Add) takes no lock and no atomic read-modify-write; flows sit
//     in a dense slice found through an open-addressing index.
//   - granularity.go: how much of the 5-tuple a key keeps (Granularity).
//   - budget.go and maintain.go: the per-interface and total flow budget (the
//     smallest flows are folded into one overflow series so sums stay exact),
//     idle expiry and the rebuild that gives memory back after a flood.
//   - snapshot.go: scrapes ask a table for a snapshot and wake its owner
//     (SetWaker); the owner copies its flows at its next Publish (in slices
//     while packets keep coming, PublishPart) and hands the copy over through
//     an atomic pointer, so a scrape never holds a lock the capture loop needs
//     and never waits for the ring's block timeout.
//   - merge.go: the fanout shards of one interface merged into one snapshot.
//   - arp.go: IP→MAC bindings seen in ARP and conflicting claims.
//
// Frames reach the tables from package afpacket (live capture) or package
// pcapfile (files); the Prometheus exposition of the tables is in package
// collector.
//
// Byte counts are wire lengths: the length of the frame as it was on the wire
// (AF_PACKET tp_len, pcap orig_len), including the link-layer header and
// excluding the FCS, whatever the snap length cut from the captured bytes.
package flowagg
