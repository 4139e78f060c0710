package collector

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/libvirtview"
	"github.com/tangfeixiong/nta/natview"
	"github.com/tangfeixiong/nta/ovsview"
)

func TestSourcesNeededUnitesDeclarations(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  Need
		str   string
	}{
		{nil, 0, "none"},
		{[]string{"links", "netns"}, NeedHost, "host"},
		{[]string{"netns", "docker"}, NeedHost | NeedDocker, "host,docker"},
		{[]string{"graph"}, NeedHost | NeedDocker | NeedLibvirt | NeedOVS, "host,docker,libvirt,ovs"},
		{[]string{"ovs"}, NeedOVS, "ovs"},
		{[]string{"libvirt"}, NeedHost | NeedLibvirt, "host,libvirt"},
		{[]string{"flows"}, NeedHost | NeedDocker | NeedLibvirt | NeedOVS | NeedFlows, "host,docker,libvirt,ovs,flows"},
		{[]string{"nat"}, NeedNAT, "nat"},
		{[]string{"no-such-collector"}, 0, "none"},
	} {
		got := SourcesNeeded(c.names)
		if got != c.want || got.String() != c.str {
			t.Errorf("SourcesNeeded(%v) = %v, want %v", c.names, got, c.str)
		}
	}
}

// spyHost and spyDocker record which sources a collector read.
type spyHost struct {
	snap *hostnet.Snapshot
	used *Need
}

func (s spyHost) Snapshot(context.Context) (*hostnet.Snapshot, error) {
	*s.used |= NeedHost
	return s.snap, nil
}

type spyDocker struct {
	view dockerview.View
	used *Need
}

func (s spyDocker) View() (dockerview.View, error) {
	*s.used |= NeedDocker
	return s.view, nil
}

type spyNAT struct {
	used *Need
}

func (s spyNAT) Snapshot() (natview.Snapshot, error) {
	*s.used |= NeedNAT
	return natHost(true), nil
}

type spyLibvirt struct {
	view libvirtview.View
	used *Need
}

func (s spyLibvirt) View() (libvirtview.View, error) {
	*s.used |= NeedLibvirt
	return s.view, nil
}

type spyOVS struct {
	view ovsview.View
	used *Need
}

func (s spyOVS) View() (ovsview.View, error) {
	*s.used |= NeedOVS
	return s.view, nil
}

// A collector that read a source it did not declare would find it missing
// when main starts only the declared ones; one that declares a source it
// never reads makes main start it for nothing. (The flows collector needs a
// capture to be built; its declaration is checked above.)
func TestCollectorsReadExactlyTheSourcesTheyDeclare(t *testing.T) {
	snap, view := dockerHost()
	_, lv := libvirtHost()
	_, _, ov := ovsHost()
	for _, name := range goldenCollectors() {
		var used Need
		src := &Sources{Host: spyHost{snap, &used}, Docker: spyDocker{view, &used}, Libvirt: spyLibvirt{lv, &used}, OVS: spyOVS{ov, &used}, NAT: spyNAT{&used}}
		c, err := factories[name].factory(src, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ch := make(chan prometheus.Metric)
		done := make(chan struct{})
		go func() {
			for range ch {
			}
			close(done)
		}()
		err = c.Update(context.Background(), ch)
		close(ch)
		<-done
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if declared := factories[name].needs; used != declared {
			t.Errorf("collector %s read %v but declares %v", name, used, declared)
		}
	}
}

// The graph can do without Docker: with no Docker source (the field left
// nil, as the Sources doc asks) it exports the kernel's wiring.
func TestGraphWithoutDockerSourceShowsTheKernel(t *testing.T) {
	snap, _ := dockerHost()
	r, err := NewRunner([]string{"graph"}, &Sources{Host: fakeHost{snap: snap}}, time.Second, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP nta_collector_success 1 when a collector's last scrape succeeded, 0 when it failed or its source is absent.
# TYPE nta_collector_success gauge
nta_collector_success{collector="graph"} 1
`
	if err := testutil.CollectAndCompare(r, strings.NewReader(want), "nta_collector_success"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(r, "nta_node_info"); n != 14 { // 7 host links (2 bridges, eth0, 4 veths; lo is left out), 4 container links, 3 sandboxes
		t.Errorf("%d nodes, want 14", n)
	}
}
