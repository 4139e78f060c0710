package collector

import (
	"fmt"
	"io/fs"
	"net/netip"
	"syscall"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/hostnet"
)

// Literal readings of hosts, written as `ip -j -d link`, `ip -j addr` and
// `docker inspect` would report them, in the shape hostnet and dockerview
// hand them over (sorted as their doc comments promise). They are the
// fixtures of the golden files in testdata/.
//
// The Docker host mirrors the e2e lab (e2e/lab_test.go): docker0 with
// nt-web (publishing 80 on host port 18080), nt-both on docker0 and the
// user-defined bridge lnmp (172.29.0.0/24), nt-db on lnmp only, a stopped
// nt-old; a container's eth0 and its host-side veth are a pair across
// namespaces whose counters mirror each other.

// Docker ids: networks, containers, sandboxes (the basename of SandboxKey).
const (
	netBridgeID = "b1d8e0c0f3a94e2a8c5d7f6e4b3a2918c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2"
	netLnmpID   = "5e2a9c4b7d1f3e6a8b0c2d4f6e8a0b1c3d5e7f9a1b2c3d4e5f60718293a4b5c6"
	netHostID   = "8a7b6c5d4e3f20119f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b3a291"
	netNoneID   = "c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3"

	webID    = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	bothID   = "b0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1"
	dbID     = "d4b5c6a7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829"
	oldID    = "0dd0c0ffee0dd0c0ffee0dd0c0ffee0dd0c0ffee0dd0c0ffee0dd0c0ffee0dd0"
	goneID   = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
	lockedID = "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
	appID    = "2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70819"
	hostnID  = "3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a"
	noneID   = "4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b"
	sideID   = "5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"

	webSandbox    = "4f2e1d0c9b8a"
	bothSandbox   = "7c3b9a1e2f40"
	dbSandbox     = "9d8e7f6a5b4c"
	goneSandbox   = "0e1f2a3b4c5d"
	lockedSandbox = "5a6b7c8d9e0f"
	appSandbox    = "2b3c4d5e6f70"
	noneSandbox   = "6c7d8e9f0a1b"

	testImage = "nta-testimage:latest"
)

func addr(cidr string) hostnet.Addr {
	p := netip.MustParsePrefix(cidr)
	if p.Addr().Is4() {
		return hostnet.Addr{Prefix: p, Family: "inet"}
	}
	return hostnet.Addr{Prefix: p, Family: "inet6"}
}

func addrs(cidrs ...string) []hostnet.Addr {
	out := make([]hostnet.Addr, len(cidrs))
	for i, c := range cidrs {
		out[i] = addr(c)
	}
	return out
}

// sandboxNS is a Docker sandbox namespace as the scanner lists it.
func sandboxNS(base string, inode uint64, pid int, comm string) hostnet.Namespace {
	return hostnet.Namespace{ID: "docker:" + base, Name: base, Kind: hostnet.KindDocker, Inode: inode,
		Path: "/var/run/docker/netns/" + base, OwnerPID: pid, OwnerComm: comm}
}

var hostNS = hostnet.Namespace{ID: hostnet.HostID, Kind: hostnet.KindHost, Inode: 4026531840,
	Path: "/proc/1/ns/net", OwnerPID: 1, OwnerComm: "systemd"}

// Links every host has.
var (
	hostLo = hostnet.Link{Netns: "host", Name: "lo", Index: 1, Kind: "loopback", MTU: 65536, OperState: "unknown",
		Addrs: addrs("127.0.0.1/8", "::1/128"),
		Stats: hostnet.Stats{RxBytes: 4096, RxPackets: 32, TxBytes: 4096, TxPackets: 32}}
	hostEth0 = hostnet.Link{Netns: "host", Name: "eth0", Index: 2, Kind: "physical", MAC: "52:54:00:12:34:56", MTU: 1500, OperState: "up",
		Addrs: addrs("192.168.122.10/24", "fe80::5054:ff:fe12:3456/64"),
		Stats: hostnet.Stats{RxBytes: 987654321, RxPackets: 654321, RxErrors: 3, RxDropped: 4,
			TxBytes: 123456789, TxPackets: 234567, TxErrors: 5, TxDropped: 6}}
	docker0 = hostnet.Link{Netns: "host", Name: "docker0", Index: 4, Kind: "bridge", MAC: "02:42:8e:51:7a:03", MTU: 1500, OperState: "up",
		Addrs: addrs("172.17.0.1/16"),
		Stats: hostnet.Stats{RxBytes: 20480, RxPackets: 160, TxBytes: 40960, TxPackets: 240}}
	brLnmp = hostnet.Link{Netns: "host", Name: "br-5e2a9c4b7d1f", Index: 5, Kind: "bridge", MAC: "02:42:3b:6c:1e:9a", MTU: 1500, OperState: "up",
		Addrs: addrs("172.29.0.1/24"),
		Stats: hostnet.Stats{RxBytes: 3000, RxPackets: 30, TxBytes: 6000, TxPackets: 45}}
)

// ctrLo is the loopback of a container namespace.
func ctrLo(netns string) hostnet.Link {
	return hostnet.Link{Netns: netns, Name: "lo", Index: 1, Kind: "loopback", MTU: 65536, OperState: "unknown",
		Addrs: addrs("127.0.0.1/8")}
}

// vethPair returns the two ends of a Docker veth: name inside the
// container's namespace ctrNS, hostName on bridge in the host namespace.
// The host end's byte and packet counters are the container end's,
// mirrored; drops and errors are each end's own (none on the host end).
func vethPair(ctrNS, name string, idx int, mac, cidr, hostName string, hostIdx int, hostMAC, bridge string, s hostnet.Stats) (ctr, host hostnet.Link) {
	ctr = hostnet.Link{Netns: ctrNS, Name: name, Index: idx, Kind: "veth", MAC: mac, MTU: 1500, OperState: "up",
		Addrs: addrs(cidr), PeerIndex: hostIdx, PeerNetns: "host", PeerName: hostName, Stats: s}
	host = hostnet.Link{Netns: "host", Name: hostName, Index: hostIdx, Kind: "veth", MAC: hostMAC, MTU: 1500, OperState: "up",
		MasterIndex: masterIndex(bridge), Master: bridge, MasterKind: "bridge", STPState: "forwarding",
		PeerIndex: idx, PeerNetns: ctrNS, PeerName: name,
		Stats: hostnet.Stats{RxBytes: s.TxBytes, RxPackets: s.TxPackets, TxBytes: s.RxBytes, TxPackets: s.RxPackets}}
	return ctr, host
}

func masterIndex(bridge string) int {
	switch bridge {
	case docker0.Name:
		return docker0.Index
	case brLnmp.Name:
		return brLnmp.Index
	}
	panic("fixture: unknown bridge " + bridge)
}

// Docker networks as GET /networks lists them.
var (
	netBridge = dockerview.Network{ID: netBridgeID, Name: "bridge", Driver: "bridge", Scope: "local",
		Subnets: []string{"172.17.0.0/16"}, Gateways: []string{"172.17.0.1"}, Bridge: "docker0"}
	netLnmp = dockerview.Network{ID: netLnmpID, Name: "lnmp", Driver: "bridge", Scope: "local",
		Subnets: []string{"172.29.0.0/24"}, Gateways: []string{"172.29.0.1"}, Bridge: "br-5e2a9c4b7d1f",
		Labels: map[string]string{"nta-e2e": "1"}}
	netHost = dockerview.Network{ID: netHostID, Name: "host", Driver: "host", Scope: "local"}
	netNone = dockerview.Network{ID: netNoneID, Name: "none", Driver: "null", Scope: "local"}
)

func bridgeEP(ip, mac, endpointID string) dockerview.Endpoint {
	return dockerview.Endpoint{NetworkID: netBridgeID, Network: "bridge", EndpointID: endpointID,
		IPv4: ip, IPv4PrefixLen: 16, MAC: mac, Gateway: "172.17.0.1"}
}

func lnmpEP(ip, mac, endpointID string) dockerview.Endpoint {
	return dockerview.Endpoint{NetworkID: netLnmpID, Network: "lnmp", EndpointID: endpointID,
		IPv4: ip, IPv4PrefixLen: 24, MAC: mac, Gateway: "172.29.0.1"}
}

// nt-web: docker0, publishes 80/tcp on host port 18080 (IPv4 and IPv6).
var (
	webEth0, webHostVeth = vethPair("docker:"+webSandbox, "eth0", 6, "02:42:ac:11:00:02", "172.17.0.2/16",
		"veth1a2b3c4", 7, "ae:1f:6b:2c:90:01", "docker0",
		hostnet.Stats{RxBytes: 5120, RxPackets: 40, RxDropped: 1, TxBytes: 10240, TxPackets: 60, TxDropped: 2})
	web = dockerview.Container{ID: webID, Name: "nt-web", Image: testImage, ImageID: "sha256:77aa", State: "running",
		NetworkMode: "bridge", SandboxKey: "/var/run/docker/netns/" + webSandbox, PID: 2101,
		Endpoints: []dockerview.Endpoint{bridgeEP("172.17.0.2", "02:42:ac:11:00:02", "e0web")},
		Ports: []dockerview.Port{
			{HostIP: "0.0.0.0", HostPort: 18080, ContainerPort: 80, Proto: "tcp"},
			{HostIP: "::", HostPort: 18080, ContainerPort: 80, Proto: "tcp"},
		}}
)

// dockerHost is scenario (a): a Docker host with a container on two
// networks (nt-both: eth0 on docker0, eth1 on lnmp), one on the user network
// only, one publishing a port, one stopped.
func dockerHost() (*hostnet.Snapshot, dockerview.View) {
	bothEth0, bothHostVeth0 := vethPair("docker:"+bothSandbox, "eth0", 8, "02:42:ac:11:00:03", "172.17.0.3/16",
		"vethd5e6f70", 9, "ae:1f:6b:2c:90:02", "docker0",
		hostnet.Stats{RxBytes: 700, RxPackets: 7, TxBytes: 1400, TxPackets: 14})
	bothEth1, bothHostVeth1 := vethPair("docker:"+bothSandbox, "eth1", 10, "02:42:ac:1d:00:02", "172.29.0.2/24",
		"veth8091a2b", 11, "ae:1f:6b:2c:90:03", "br-5e2a9c4b7d1f",
		hostnet.Stats{RxBytes: 300, RxPackets: 3, TxBytes: 900, TxPackets: 9})
	dbEth0, dbHostVeth := vethPair("docker:"+dbSandbox, "eth0", 12, "02:42:ac:1d:00:03", "172.29.0.3/24",
		"vethc3d4e5f", 13, "ae:1f:6b:2c:90:04", "br-5e2a9c4b7d1f",
		hostnet.Stats{RxBytes: 900, RxPackets: 9, TxBytes: 300, TxPackets: 3})
	snap := &hostnet.Snapshot{
		Namespaces: []hostnet.Namespace{
			hostNS,
			sandboxNS(webSandbox, 4026532301, 2101, "app"),
			sandboxNS(bothSandbox, 4026532402, 2301, "app"),
			sandboxNS(dbSandbox, 4026532503, 2401, "app"),
		},
		Links: []hostnet.Link{
			brLnmp, docker0, hostEth0, hostLo, webHostVeth, bothHostVeth1, dbHostVeth, bothHostVeth0,
			webEth0, ctrLo("docker:" + webSandbox),
			bothEth0, bothEth1, ctrLo("docker:" + bothSandbox),
			dbEth0, ctrLo("docker:" + dbSandbox),
		},
	}
	view := dockerview.View{
		Networks: []dockerview.Network{netBridge, netHost, netLnmp, netNone},
		Containers: []dockerview.Container{
			{ID: bothID, Name: "nt-both", Image: testImage, ImageID: "sha256:77aa", State: "running",
				NetworkMode: "bridge", SandboxKey: "/var/run/docker/netns/" + bothSandbox, PID: 2301,
				Endpoints: []dockerview.Endpoint{
					bridgeEP("172.17.0.3", "02:42:ac:11:00:03", "e0both"),
					lnmpEP("172.29.0.2", "02:42:ac:1d:00:02", "e1both"),
				}},
			{ID: dbID, Name: "nt-db", Image: testImage, ImageID: "sha256:77aa", State: "running",
				NetworkMode: "lnmp", SandboxKey: "/var/run/docker/netns/" + dbSandbox, PID: 2401,
				Endpoints: []dockerview.Endpoint{lnmpEP("172.29.0.3", "02:42:ac:1d:00:03", "e0db")}},
			// Stopped: no sandbox, no endpoints, nothing in the kernel.
			{ID: oldID, Name: "nt-old", Image: testImage, ImageID: "sha256:77aa", State: "exited", NetworkMode: "bridge"},
			web,
		},
	}
	return snap, view
}

// vanishedNetns is scenario (b): the Docker view (kept current from
// events) is a little ahead of the kernel scan.
//   - nt-gone is running per Docker, but its sandbox namespace vanished
//     while being scanned, so the scanner left it out; the host end of its
//     veth was still listed, with a peer that cannot be resolved.
//   - nt-locked's sandbox is listed but could not be read (its links are
//     missing and the failure is in Snapshot.Errors), so its host veth's
//     peer cannot be resolved either.
//   - nt-app is healthy, for contrast.
//
// Another error of the scan is a discovery one, with no namespace id.
func vanishedNetns() (*hostnet.Snapshot, dockerview.View) {
	appEth0, appHostVeth := vethPair("docker:"+appSandbox, "eth0", 6, "02:42:ac:11:00:04", "172.17.0.4/16",
		"veth2b3c4d5", 7, "ae:1f:6b:2c:90:05", "docker0",
		hostnet.Stats{RxBytes: 100, RxPackets: 1, TxBytes: 200, TxPackets: 2})
	unresolved := func(name string, idx, peerIdx int, mac string) hostnet.Link {
		return hostnet.Link{Netns: "host", Name: name, Index: idx, Kind: "veth", MAC: mac, MTU: 1500, OperState: "up",
			MasterIndex: docker0.Index, Master: "docker0", MasterKind: "bridge", STPState: "forwarding", PeerIndex: peerIdx}
	}
	lockedNS := sandboxNS(lockedSandbox, 4026532611, 0, "")
	snap := &hostnet.Snapshot{
		Namespaces: []hostnet.Namespace{hostNS, sandboxNS(appSandbox, 4026532601, 2501, "app"), lockedNS},
		Links: []hostnet.Link{
			docker0, hostEth0, hostLo,
			unresolved("veth0e1f2a3", 9, 8, "ae:1f:6b:2c:90:06"),
			appHostVeth,
			unresolved("veth5a6b7c8", 11, 10, "ae:1f:6b:2c:90:07"),
			appEth0, ctrLo("docker:" + appSandbox),
		},
		Errors: []error{
			&hostnet.NamespaceError{Path: "/proc/*/ns/net",
				Err: fmt.Errorf("2 processes' namespaces not readable: %w — run as root or grant CAP_SYS_PTRACE", fs.ErrPermission)},
			&hostnet.NamespaceError{ID: lockedNS.ID, Path: lockedNS.Path,
				Err: fmt.Errorf("dump links: %w", syscall.EACCES)},
		},
	}
	view := dockerview.View{
		Networks: []dockerview.Network{netBridge, netHost, netNone},
		Containers: []dockerview.Container{
			{ID: appID, Name: "nt-app", Image: testImage, State: "running", NetworkMode: "bridge",
				SandboxKey: "/var/run/docker/netns/" + appSandbox, PID: 2501,
				Endpoints: []dockerview.Endpoint{bridgeEP("172.17.0.4", "02:42:ac:11:00:04", "e0app")}},
			{ID: goneID, Name: "nt-gone", Image: testImage, State: "running", NetworkMode: "bridge",
				SandboxKey: "/var/run/docker/netns/" + goneSandbox, PID: 2601,
				Endpoints: []dockerview.Endpoint{bridgeEP("172.17.0.5", "02:42:ac:11:00:05", "e0gone")}},
			{ID: lockedID, Name: "nt-locked", Image: testImage, State: "running", NetworkMode: "bridge",
				SandboxKey: "/var/run/docker/netns/" + lockedSandbox, PID: 2701,
				Endpoints: []dockerview.Endpoint{bridgeEP("172.17.0.6", "02:42:ac:11:00:06", "e0locked")}},
		},
	}
	return snap, view
}

// networkModes is scenario (c): containers without a veth of their own.
//   - nt-side runs with --network container:nt-web: no SandboxKey, no
//     endpoints; it lives in nt-web's namespace (dockerview resolved the
//     name in NetworkMode to nt-web's id).
//   - nt-hostnet runs with --network host: an endpoint on "host" without
//     addresses, the host's namespace.
//   - nt-none runs with --network none: an endpoint on "none", a sandbox
//     holding only lo.
func networkModes() (*hostnet.Snapshot, dockerview.View) {
	snap := &hostnet.Snapshot{
		Namespaces: []hostnet.Namespace{
			hostNS,
			sandboxNS(webSandbox, 4026532301, 2101, "app"),
			sandboxNS(noneSandbox, 4026532701, 3201, "app"),
		},
		Links: []hostnet.Link{
			docker0, hostEth0, hostLo, webHostVeth,
			webEth0, ctrLo("docker:" + webSandbox),
			ctrLo("docker:" + noneSandbox),
		},
	}
	view := dockerview.View{
		Networks: []dockerview.Network{netBridge, netHost, netNone},
		Containers: []dockerview.Container{
			{ID: hostnID, Name: "nt-hostnet", Image: testImage, State: "running", NetworkMode: "host",
				SandboxKey: "/var/run/docker/netns/default", PID: 3101,
				Endpoints: []dockerview.Endpoint{{NetworkID: netHostID, Network: "host", EndpointID: "e0hostnet"}}},
			{ID: noneID, Name: "nt-none", Image: testImage, State: "running", NetworkMode: "none",
				SandboxKey: "/var/run/docker/netns/" + noneSandbox, PID: 3201,
				Endpoints: []dockerview.Endpoint{{NetworkID: netNoneID, Network: "none", EndpointID: "e0none"}}},
			{ID: sideID, Name: "nt-side", Image: testImage, State: "running", NetworkMode: "container:" + webID, PID: 3301},
			web,
		},
	}
	return snap, view
}
