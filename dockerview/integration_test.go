package dockerview_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/internal/testimage"
)

// inspectNetwork is the part of `docker network inspect` JSON compared.
type inspectNetwork struct {
	ID       string `json:"Id"`
	Name     string
	Driver   string
	Scope    string
	Internal bool
	Options  map[string]string
	IPAM     struct {
		Config []struct{ Subnet, Gateway string }
	}
}

// inspectContainer is the part of `docker inspect` JSON compared.
type inspectContainer struct {
	ID    string `json:"Id"`
	Name  string
	Image string
	State struct {
		Status string
		Pid    int
	}
	Config struct {
		Image  string
		Labels map[string]string
	}
	HostConfig      struct{ NetworkMode string }
	NetworkSettings struct {
		SandboxKey string
		Networks   map[string]struct {
			NetworkID, EndpointID, IPAddress, MacAddress, Gateway string
			GlobalIPv6Address, IPv6Gateway                        string
			IPPrefixLen, GlobalIPv6PrefixLen                      int
		}
	}
}

func dockerJSON[T any](t *testing.T, args ...string) T {
	t.Helper()
	var out []T
	if err := json.Unmarshal([]byte(testimage.Docker(t, args...)), &out); err != nil || len(out) != 1 {
		t.Fatalf("docker %v: %d objects, %v", args, len(out), err)
	}
	return out[0]
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// wait polls the watcher's view until ok accepts it (events only: the
// resync interval is an hour).
func wait(t *testing.T, w *dockerview.Watcher, what string, ok func(dockerview.View) bool) dockerview.View {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := w.View()
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not seen within 10s (err %v)", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIntegrationRealDockerd(t *testing.T) {
	ref := testimage.Ensure(t) // skips without docker, fails with CI=true

	w, err := dockerview.New(dockerview.Options{Resync: time.Hour, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go w.Run(ctx)
	t.Cleanup(func() { cancel(); w.Close() })
	wait(t, w, "initial sync", func(v dockerview.View) bool { return true })

	// Networks: the default bridge and a new user network, seen via events.
	netName, subnet := testimage.CreateNetwork(t, "nta-dv")
	v := wait(t, w, "network "+netName, func(v dockerview.View) bool { _, ok := v.Network(netName); return ok })
	for _, name := range []string{"bridge", netName} {
		want := dockerJSON[inspectNetwork](t, "network", "inspect", name)
		got, _ := v.Network(name)
		checkNetwork(t, got, want)
	}
	if n, _ := v.Network(netName); !slices.Equal(n.Subnets, []string{subnet}) {
		t.Errorf("subnets %v, want [%s]", n.Subnets, subnet)
	}

	// A container with a published port, then connected to the user network.
	cname := testimage.RunContainer(t, "nta-dv", "-p", "127.0.0.1::80", "--label", "nta.test=dockerview", ref)
	testimage.Docker(t, "network", "connect", netName, cname)
	v = wait(t, w, "container on two networks", func(v dockerview.View) bool {
		c, _ := v.Container(cname)
		return len(c.Endpoints) == 2
	})
	c, _ := v.Container(cname)
	checkContainer(t, c, dockerJSON[inspectContainer](t, "inspect", cname))
	checkPorts(t, c, testimage.Docker(t, "port", cname))
	checkNetns(t, c)

	// A container sharing cname's network namespace.
	side := testimage.RunContainer(t, "nta-dv-side", "--network", "container:"+cname, ref, "-sleep")
	v = wait(t, w, "sidecar", func(v dockerview.View) bool { s, _ := v.Container(side); return s.State == "running" })
	if s, _ := v.Container(side); s.NetworkMode != "container:"+c.ID || len(s.Endpoints) != 0 || s.SandboxKey != "" || s.PID == 0 {
		t.Errorf("sidecar %+v, want NetworkMode container:%s, no endpoints", s, c.ID)
	}
	testimage.Docker(t, "rm", "-f", side)

	testimage.Docker(t, "network", "disconnect", netName, cname)
	wait(t, w, "disconnect", func(v dockerview.View) bool { c, _ := v.Container(cname); return len(c.Endpoints) == 1 })

	testimage.Docker(t, "stop", "-t", "2", cname)
	v = wait(t, w, "stopped container", func(v dockerview.View) bool { c, _ := v.Container(cname); return c.State == "exited" })
	if c, _ := v.Container(cname); len(c.Endpoints) != 0 || c.PID != 0 || c.SandboxKey != "" || len(c.Ports) != 0 {
		t.Errorf("stopped container keeps runtime data: %+v", c)
	}

	testimage.Docker(t, "rm", cname)
	wait(t, w, "container removal", func(v dockerview.View) bool { _, ok := v.Container(cname); return !ok })

	testimage.Docker(t, "network", "rm", netName)
	wait(t, w, "network removal", func(v dockerview.View) bool { _, ok := v.Network(netName); return !ok })
}

func checkNetwork(t *testing.T, got dockerview.Network, want inspectNetwork) {
	t.Helper()
	var subnets, gws []string
	for _, c := range want.IPAM.Config {
		if c.Subnet != "" {
			subnets = append(subnets, c.Subnet)
		}
		if c.Gateway != "" {
			gws = append(gws, c.Gateway)
		}
	}
	exp := dockerview.Network{ID: want.ID, Name: want.Name, Driver: want.Driver, Scope: want.Scope,
		Internal: want.Internal, Subnets: subnets, Gateways: gws, Bridge: got.Bridge, Labels: got.Labels}
	if diff := cmp.Diff(exp, got); diff != "" {
		t.Errorf("network %s differs from docker network inspect (-inspect +view):\n%s", want.Name, diff)
	}
	// The bridge name must be a real kernel interface.
	wantBridge := "br-" + want.ID[:12]
	if want.Name == "bridge" {
		wantBridge = "docker0"
	}
	if b := want.Options["com.docker.network.bridge.name"]; b != "" {
		wantBridge = b
	}
	if got.Bridge != wantBridge {
		t.Errorf("network %s: Bridge %q, want %q", want.Name, got.Bridge, wantBridge)
	}
	if !localEngine() {
		return
	}
	if _, err := net.InterfaceByName(got.Bridge); err != nil {
		t.Errorf("network %s: bridge %q is not a host interface: %v", want.Name, got.Bridge, err)
	}
}

func checkContainer(t *testing.T, got dockerview.Container, want inspectContainer) {
	t.Helper()
	mode := want.HostConfig.NetworkMode
	if mode == "default" {
		mode = "bridge"
	}
	exp := dockerview.Container{
		ID: want.ID, Name: strings.TrimPrefix(want.Name, "/"), Image: want.Config.Image, ImageID: want.Image,
		State: want.State.Status, NetworkMode: mode, SandboxKey: want.NetworkSettings.SandboxKey,
		PID: want.State.Pid, Labels: want.Config.Labels, Ports: got.Ports,
	}
	for name, e := range want.NetworkSettings.Networks {
		exp.Endpoints = append(exp.Endpoints, dockerview.Endpoint{
			NetworkID: e.NetworkID, Network: name, EndpointID: e.EndpointID,
			IPv4: e.IPAddress, IPv4PrefixLen: e.IPPrefixLen, IPv6: e.GlobalIPv6Address,
			IPv6PrefixLen: e.GlobalIPv6PrefixLen, MAC: strings.ToLower(e.MacAddress),
			Gateway: e.Gateway, IPv6Gateway: e.IPv6Gateway,
		})
	}
	slices.SortFunc(exp.Endpoints, func(a, b dockerview.Endpoint) int { return strings.Compare(a.Network, b.Network) })
	if diff := cmp.Diff(exp, got); diff != "" {
		t.Errorf("container differs from docker inspect (-inspect +view):\n%s", diff)
	}
	if got.State != "running" || got.PID == 0 || got.SandboxKey == "" {
		t.Errorf("running container lacks runtime data: %+v", got)
	}
}

// checkPorts compares Ports with `docker port` ("80/tcp -> 127.0.0.1:49153").
func checkPorts(t *testing.T, c dockerview.Container, dockerPort string) {
	t.Helper()
	var want []dockerview.Port
	for _, line := range strings.Split(dockerPort, "\n") {
		cport, hostAddr, ok := strings.Cut(line, " -> ")
		if !ok {
			continue
		}
		num, proto, _ := strings.Cut(cport, "/")
		host, hport, err := net.SplitHostPort(hostAddr)
		if err != nil {
			t.Fatalf("docker port line %q: %v", line, err)
		}
		cp, _ := strconv.Atoi(num)
		hp, _ := strconv.Atoi(hport)
		want = append(want, dockerview.Port{HostIP: host, HostPort: uint16(hp), ContainerPort: uint16(cp), Proto: proto})
	}
	if len(want) != 1 || want[0].HostIP != "127.0.0.1" {
		t.Errorf("docker port shows %+v, want one 127.0.0.1 binding", want)
	}
	if !cmp.Equal(want, c.Ports) {
		t.Errorf("ports %+v, docker port says %+v", c.Ports, want)
	}
}

// checkNetns verifies with the kernel that SandboxKey is the network
// namespace of PID.
func checkNetns(t *testing.T, c dockerview.Container) {
	t.Helper()
	if !localEngine() {
		return
	}
	var sandbox, proc syscall.Stat_t
	if err := syscall.Stat(c.SandboxKey, &sandbox); err != nil {
		t.Errorf("SandboxKey: %v", err)
		return
	}
	if err := syscall.Stat("/proc/"+strconv.Itoa(c.PID)+"/ns/net", &proc); err != nil {
		t.Errorf("PID %d: %v", c.PID, err)
		return
	}
	if sandbox.Ino != proc.Ino || sandbox.Dev != proc.Dev {
		t.Errorf("SandboxKey %s (inode %d) is not the netns of pid %d (inode %d)", c.SandboxKey, sandbox.Ino, c.PID, proc.Ino)
	}
}

// localEngine reports whether the engine runs on this host (unix socket),
// so its bridges and namespaces can be checked with the kernel.
func localEngine() bool {
	h := os.Getenv("DOCKER_HOST")
	return h == "" || strings.HasPrefix(h, "unix://")
}
