package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/internal/testenv"
	"github.com/tangfeixiong/nta/internal/testimage"
)

// lab is the Docker + Linux bridge lab of the seed notes:
//
//	docker0: nt-web (publishes 80 on host port 18080), nt-app, nt-both
//	lnmp (172.29.0.0/24, user-defined bridge): nt-both (docker network connect), nt-db
//	nt-br0 ==veth nt-v0/nt-v1== nt-br1   (two Linux bridges joined by a veth pair)
//	named netns nt-ns1: eth0 ⇄ nt-ns1h on nt-br0
type lab struct {
	image      string
	containers []string
}

const (
	labNet    = "lnmp"
	labSubnet = "172.29.0.0/24"
	labNS     = "nt-ns1"
	hostPort  = "18080"
)

func newLab(t *testing.T) *lab {
	t.Helper()
	testenv.RequireRoot(t)
	testimage.RequireDocker(t)
	l := &lab{image: testimage.Ensure(t)}
	l.teardown() // leftovers of an interrupted run
	t.Cleanup(l.teardown)

	// Linux bridges joined by a veth pair, a named namespace on br0.
	testenv.Run(t, "ip", "link", "add", "nt-br0", "type", "bridge")
	testenv.Run(t, "ip", "link", "add", "nt-br1", "type", "bridge")
	testenv.Run(t, "ip", "link", "add", "nt-v0", "type", "veth", "peer", "name", "nt-v1")
	testenv.Run(t, "ip", "link", "set", "nt-v0", "master", "nt-br0")
	testenv.Run(t, "ip", "link", "set", "nt-v1", "master", "nt-br1")
	testenv.Run(t, "ip", "netns", "add", labNS)
	testenv.Run(t, "ip", "link", "add", "nt-ns1h", "type", "veth", "peer", "name", "eth0", "netns", labNS)
	testenv.Run(t, "ip", "link", "set", "nt-ns1h", "master", "nt-br0")
	testenv.Run(t, "ip", "-n", labNS, "addr", "add", "10.77.0.2/24", "dev", "eth0")
	for _, dev := range []string{"nt-br0", "nt-br1", "nt-v0", "nt-v1", "nt-ns1h"} {
		testenv.Run(t, "ip", "link", "set", dev, "up")
	}
	testenv.Run(t, "ip", "-n", labNS, "link", "set", "eth0", "up")
	testenv.Run(t, "ip", "-n", labNS, "link", "set", "lo", "up")

	// Docker: the default bridge and a user-defined one.
	testenv.Run(t, "docker", "network", "create", "--driver", "bridge", "--subnet", labSubnet, "--label", "nta-e2e=1", labNet)
	l.run(t, "nt-web", "-p", hostPort+":80")
	l.run(t, "nt-app")
	l.run(t, "nt-both")
	testenv.Run(t, "docker", "network", "connect", labNet, "nt-both")
	l.run(t, "nt-db", "--network", labNet)
	// The other network modes: the host's namespace, none, another container's.
	l.start(t, "nt-hostnet", []string{"--network", "host", "-e", "PORT=18081"}, nil)
	l.start(t, "nt-none", []string{"--network", "none"}, nil)
	l.start(t, "nt-side", []string{"--network", "container:nt-web"}, []string{"-sleep"})
	return l
}

// run starts a container of the test image (it listens on TCP 80).
func (l *lab) run(t testing.TB, name string, args ...string) {
	t.Helper()
	l.start(t, name, args, nil)
	l.containers = append(l.containers, name)
}

// start runs a container of the test image with docker args and image args.
func (l *lab) start(t testing.TB, name string, args, appArgs []string) {
	t.Helper()
	a := append([]string{"run", "-d", "--name", name, "--label", "nta-e2e=1"}, args...)
	a = append(a, l.image)
	testenv.Run(t, "docker", append(a, appArgs...)...)
}

func (l *lab) teardown() {
	out, _ := execOut("docker", "ps", "-aq", "--filter", "label=nta-e2e=1")
	for _, id := range strings.Fields(out) {
		testenv.RunQuiet("docker", "rm", "-f", id)
	}
	testenv.RunQuiet("docker", "network", "rm", labNet)
	for _, dev := range []string{"nt-br0", "nt-br1", "nt-v0", "nt-ns1h"} {
		testenv.RunQuiet("ip", "link", "del", dev)
	}
	testenv.RunQuiet("ip", "netns", "del", labNS)
}

// sandbox returns a container's network namespace file and nta's id for it.
func sandbox(t testing.TB, name string) (path, id string) {
	t.Helper()
	path = strings.TrimSpace(testenv.Run(t, "docker", "inspect", "-f", "{{.NetworkSettings.SandboxKey}}", name))
	if path == "" {
		t.Fatalf("container %s has no sandbox", name)
	}
	return path, "docker:" + path[strings.LastIndex(path, "/")+1:]
}

func execOut(name string, args ...string) (string, error) {
	b, err := exec.Command(name, args...).Output()
	return string(b), err
}

func init() {
	// Tests talk to Debian's docker client when both exist: it matches the engine.
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		os.Setenv("PATH", "/usr/bin:"+os.Getenv("PATH"))
	}
}
