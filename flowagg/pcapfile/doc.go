// Package pcapfile analyzes pcap and pcapng files offline (nta-exporter
// analyze) through the same decoder and flow tables as live capture: totals
// per interface, decode errors by reason, EtherTypes and the top flows.
// Directions come from the pcapng EPB flags, interfaces from its IDBs.
package pcapfile
