package dashboards

import (
	"os/exec"
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

// ovsFixture is an Open vSwitch bridge (userspace datapath) with two
// namespaces on veth ports, which ping each other in traffic():
//
//	NS1: eth0 ==veth== host: Port1 --OVS Bridge-- Port2 ==veth== NS2: eth0
type ovsFixture struct {
	Bridge, Port1, Port2, NS1, NS2 string
}

// ovsAnswers reports whether ovsdb-server answers ovs-vsctl.
func ovsAnswers() bool { return exec.Command("ovs-vsctl", "--timeout=2", "show").Run() == nil }

func newOVSFixture(t *testing.T) *ovsFixture {
	t.Helper()
	id := testenv.RandHex(2)
	f := &ovsFixture{Bridge: "ntdo" + id + "br", Port1: "ntdo" + id + "p1", Port2: "ntdo" + id + "p2", NS1: "ntdo-" + id + "-1", NS2: "ntdo-" + id + "-2"}
	t.Cleanup(func() {
		testenv.RunQuiet("ovs-vsctl", "--timeout=10", "--if-exists", "del-br", f.Bridge)
		for _, p := range []string{f.Port1, f.Port2} {
			testenv.RunQuiet("ip", "link", "del", p)
		}
		for _, ns := range []string{f.NS1, f.NS2} {
			testenv.RunQuiet("ip", "netns", "del", ns)
		}
	})
	testenv.Run(t, "ovs-vsctl", "--timeout=10", "add-br", f.Bridge, "--", "set", "bridge", f.Bridge, "datapath_type=netdev")
	for i, pair := range [][2]string{{f.Port1, f.NS1}, {f.Port2, f.NS2}} {
		port, ns := pair[0], pair[1]
		testenv.Run(t, "ip", "netns", "add", ns)
		testenv.Run(t, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		testenv.Run(t, "ip", "-n", ns, "addr", "add", "198.18.93."+strconv.Itoa(i+1)+"/24", "dev", "eth0")
		testenv.Run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		testenv.Run(t, "ip", "link", "set", port, "up")
		testenv.Run(t, "ovs-vsctl", "--timeout=10", "add-port", f.Bridge, port)
	}
	return f
}

// traffic pings NS2 from NS1 through the OVS bridge.
func (f *ovsFixture) traffic(t *testing.T) {
	t.Helper()
	testenv.Run(t, "ip", "netns", "exec", f.NS1, "ping", "-c", "20", "-i", "0.05", "-s", "1000", "-W", "1", "198.18.93.2")
}
