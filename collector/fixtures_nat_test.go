package collector

import (
	"time"

	"github.com/tangfeixiong/nta/natview"
)

// fakeNAT is a NATSource answering with a literal snapshot.
type fakeNAT struct {
	snap natview.Snapshot
	err  error
}

func (f fakeNAT) Snapshot() (natview.Snapshot, error) { return f.snap, f.err }

// natHost is the conntrack reading of dockerHost: clients in 198.18.0.0/15
// reach nt-web's published 8080/tcp (one peer folded into overflow by a
// budget of 2), nt-db talks to a server outside through MASQUERADE.
func natHost(acct bool) natview.Snapshot {
	webCt := natview.Container{ID: webID, Name: "nt-web"}
	dbCt := natview.Container{ID: dbID, Name: "nt-db"}
	in := func(peer string, opened uint64, open int64, rx, tx uint64) natview.Series {
		return natview.Series{Container: webCt, Direction: natview.Ingress, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080,
			Peer: peer, Opened: opened, Open: open,
			Received: natview.Counters{Bytes: rx, Packets: rx / 100}, Transmitted: natview.Counters{Bytes: tx, Packets: tx / 100}}
	}
	port := in("", 15, 2, 7300, 28600)
	return natview.Snapshot{
		Ports: []natview.Series{port},
		Series: []natview.Series{
			{Container: dbCt, Direction: natview.Egress, Proto: "tcp", Peer: "198.18.0.2:9000", Opened: 3, Open: 1,
				Received: natview.Counters{Bytes: 180, Packets: 3}, Transmitted: natview.Counters{Bytes: 6000, Packets: 9}},
			in("198.18.0.2", 10, 2, 5000, 20000),
			in("198.18.0.3", 4, 0, 2000, 8000),
			in(natview.OverflowPeer, 1, 0, 300, 600),
			// A VM on a libvirt NAT network reaching outside (MASQUERADE).
			{Container: natview.Container{ID: "4dea22b3-1d52-d8f3-2516-782e98ab3fa0", Name: "vm-lab", Kind: natview.KindVM},
				Direction: natview.Egress, Proto: "udp", Peer: "198.18.0.53:53", Opened: 2,
				Received: natview.Counters{Bytes: 256, Packets: 2}, Transmitted: natview.Counters{Bytes: 128, Packets: 2}},
		},
		Health: natview.Health{
			Accounting: acct, Events: [3]uint64{18, 40, 16}, ReceiveErrors: 1, EventsLost: 2, Dumps: 7,
			DumpDuration: 1500 * time.Microsecond, Tracked: 4, Unattributed: 1, PeerBudget: 2, FoldedPeers: 1,
			Entries: 42, Limit: 262144,
		},
	}
}
