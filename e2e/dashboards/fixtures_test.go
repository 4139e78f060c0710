package dashboards

import (
	"strconv"
	"testing"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
)

// netnsFixture is a named namespace holding a bridge with one port, the
// other end of which is a veth in the host namespace:
//
//	host: HostIf ==veth== NS: PeerIf -- master --> Bridge
//
// It makes the bridge-port and veth-peer tables and the topology's
// cross-namespace veth edge non-empty on any host.
type netnsFixture struct {
	NS, HostIf, PeerIf, Bridge string
}

func newNetnsFixture(t *testing.T) *netnsFixture {
	t.Helper()
	id := testenv.RandHex(2)
	f := &netnsFixture{NS: "ntdash-" + id, HostIf: "ntd" + id + "h", PeerIf: "ntd" + id + "p", Bridge: "ntd" + id + "br"}
	t.Cleanup(func() {
		testenv.RunQuiet("ip", "link", "del", f.HostIf)
		testenv.RunQuiet("ip", "netns", "del", f.NS)
	})
	testenv.Run(t, "ip", "netns", "add", f.NS)
	testenv.Run(t, "ip", "link", "add", f.HostIf, "type", "veth", "peer", "name", f.PeerIf, "netns", f.NS)
	testenv.Run(t, "ip", "-n", f.NS, "link", "add", f.Bridge, "type", "bridge")
	testenv.Run(t, "ip", "-n", f.NS, "link", "set", f.PeerIf, "master", f.Bridge)
	testenv.Run(t, "ip", "link", "set", f.HostIf, "up")
	testenv.Run(t, "ip", "-n", f.NS, "link", "set", f.PeerIf, "up")
	testenv.Run(t, "ip", "-n", f.NS, "link", "set", f.Bridge, "up")
	return f
}

// dockerLab is two containers of the test image on a network of their
// own; Server also publishes its port 80 on a random loopback port.
type dockerLab struct {
	Network, Server, Client string
}

func newDockerLab(t *testing.T) *dockerLab {
	t.Helper()
	img := testimage.Ensure(t)
	l := &dockerLab{}
	l.Network, _ = testimage.CreateNetwork(t, "ntdash")
	l.Server = testimage.RunContainer(t, "ntdash-srv", "--network", l.Network, "-p", "127.0.0.1::80", img)
	l.Client = testimage.RunContainer(t, "ntdash-cli", "--network", l.Network, img)
	return l
}

// sendTraffic sends n bytes over TCP from Client to Server, between the
// two containers the test created only.
func (l *dockerLab) sendTraffic(t *testing.T, n int) {
	t.Helper()
	testimage.Docker(t, "exec", l.Client, "/app", "-send", l.Server+":80", "-bytes", strconv.Itoa(n), "-chunk", "10000")
}
