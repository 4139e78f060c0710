// Package afpacket captures frames on the interfaces of the host network
// namespace with AF_PACKET TPACKET_V3 rings (optionally several sockets per
// interface in a PACKET_FANOUT_HASH group) and feeds them to flowagg tables.
//
// A Capturer picks interfaces up as they appear (netlink link notifications
// plus a periodic rescan) and releases them when they vanish or stop being
// selected. Selection is by name globs and by roles, opaque strings given by
// a RoleSource (the topology layer owns their meaning). A classic BPF socket
// filter implements the snap length and an optional user filter (tcpdump
// -ddd output, or tcpdump syntax in builds with -tags pcap). One goroutine
// per ring owns its table; a scrape's snapshot request wakes it at once.
package afpacket
