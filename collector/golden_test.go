package collector

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/libvirtview"
	"github.com/tangfeixiong/nta/natview"
	"github.com/tangfeixiong/nta/ovsview"
)

func ptr[T any](v T) *T { return &v }

var update = flag.Bool("update", false, "rewrite collector/testdata/*.prom from the collectors' output; review the diff before committing it")

// fakeHost is a HostSource answering with a literal snapshot.
type fakeHost struct {
	snap *hostnet.Snapshot
	err  error
}

func (f fakeHost) Snapshot(context.Context) (*hostnet.Snapshot, error) { return f.snap, f.err }

// fakeDocker is a DockerSource answering with a literal view.
type fakeDocker struct {
	view dockerview.View
	err  error
}

func (f fakeDocker) View() (dockerview.View, error) { return f.view, f.err }

// fakeLibvirt is a LibvirtSource answering with a literal view.
type fakeLibvirt struct {
	view libvirtview.View
	err  error
}

func (f fakeLibvirt) View() (libvirtview.View, error) { return f.view, f.err }

// nonDeterministic are families left out of golden files.
var nonDeterministic = []string{Namespace + "_collector_duration_seconds"}

// goldenCollectors are the registered collectors that read only host and
// Docker sources; a new one is covered (and its golden lines must be
// reviewed) as soon as it registers.
func goldenCollectors() []string {
	var out []string
	for _, name := range Names() {
		if !factories[name].needs.Has(NeedFlows) {
			out = append(out, name)
		}
	}
	return out
}

// gatherGolden runs the golden collectors over src once and returns what a
// scrape would expose, without the non-deterministic families.
func gatherGolden(t *testing.T, src *Sources) prometheus.Gatherer {
	t.Helper()
	r, err := NewRunner(goldenCollectors(), src, 5*time.Second, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r)
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		fams, err := reg.Gather()
		return slices.DeleteFunc(fams, func(f *dto.MetricFamily) bool {
			return slices.Contains(nonDeterministic, f.GetName())
		}), err
	})
}

// The golden files are node_exporter's fixture idiom: the exposition of
// every host- and Docker-reading collector for a literal reading of a host
// (fixtures_test.go). Regenerate with
//
//	go test ./collector -run Golden -update
//
// and review the diff: it is what users will see change.
func TestGoldenExposition(t *testing.T) {
	unavailable := fmt.Errorf("%w: connect to unix:///var/run/docker.sock: no such file — start dockerd", dockerview.ErrUnavailable)
	noOVS := fakeOVS{err: fmt.Errorf("%w: connect to OVSDB at unix:/var/run/openvswitch/db.sock: no such file", ovsview.ErrUnavailable)}
	noLibvirt := fakeLibvirt{err: fmt.Errorf("%w: dial unix /var/run/libvirt/libvirt-sock: no such file — start libvirtd", libvirtview.ErrUnavailable)}
	for _, sc := range []struct {
		name    string
		fixture func() (*hostnet.Snapshot, dockerview.View)
		dockerr error
		libvirt func() (*hostnet.Snapshot, libvirtview.View)
		ovs     bool
		nat     *natview.Snapshot
	}{
		{"docker_host", dockerHost, nil, nil, false, nil},
		{"vanished_netns", vanishedNetns, nil, nil, false, nil},
		{"network_modes", networkModes, nil, nil, false, nil},
		// Docker down: the docker collector reports no data, the graph
		// still shows the kernel's wiring.
		{"docker_down", dockerHost, unavailable, nil, false, nil},
		// A libvirt host next to Docker: VMs on a Linux bridge and on an
		// isolated libvirt network, a hostdev NIC, a stopped VM.
		{"libvirt_host", nil, unavailable, libvirtHost, false, nil},
		// Open vSwitch: patch pair, tunnel, an ovs-docker container, a VM
		// on an OVS port, a bond, an interface OVS could not add.
		{"ovs_host", nil, unavailable, nil, true, nil},
		// North-south traffic through Docker's NAT, with conntrack
		// accounting on (bytes and packets) and off (connections only).
		{"nat_host", dockerHost, nil, nil, false, ptr(natHost(true))},
		{"nat_no_accounting", dockerHost, nil, nil, false, ptr(natHost(false))},
	} {
		t.Run(sc.name, func(t *testing.T) {
			var snap *hostnet.Snapshot
			var view dockerview.View
			lv := LibvirtSource(noLibvirt)
			if sc.fixture != nil {
				snap, view = sc.fixture()
			}
			if sc.libvirt != nil {
				var v libvirtview.View
				snap, v = sc.libvirt()
				lv = fakeLibvirt{view: v}
			}
			ov := OVSSource(noOVS)
			if sc.ovs {
				var l libvirtview.View
				var o ovsview.View
				snap, l, o = ovsHost()
				lv, ov = fakeLibvirt{view: l}, fakeOVS{view: o}
			}
			if sc.dockerr != nil {
				view = dockerview.View{}
			}
			nat := fakeNAT{err: fmt.Errorf("%w: /proc/sys/net/netfilter/nf_conntrack_max missing — nf_conntrack is not loaded: modprobe nf_conntrack", natview.ErrUnavailable)}
			if sc.nat != nil {
				nat = fakeNAT{snap: *sc.nat}
			}
			g := gatherGolden(t, &Sources{Host: fakeHost{snap: snap}, Docker: fakeDocker{view: view, err: sc.dockerr}, Libvirt: lv, OVS: ov, NAT: nat})
			path := filepath.Join("testdata", sc.name+".prom")
			if *update {
				writeGolden(t, path, g)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (create it with go test ./collector -run Golden -update)", err)
			}
			if err := testutil.GatherAndCompare(g, bytes.NewReader(want)); err != nil {
				t.Errorf("%s differs from the collectors' output; if the change is intended, run go test ./collector -run Golden -update and review the diff:\n%v", path, err)
			}
		})
	}
}

func writeGolden(t *testing.T, path string, g prometheus.Gatherer) {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Golden exposition of %s, generated by go test ./collector -run Golden -update\n", filepath.Base(path))
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
