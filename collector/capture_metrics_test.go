package collector

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tangfeixiong/nta/flowagg"
	"github.com/tangfeixiong/nta/flowagg/afpacket"
)

type fakeStats []afpacket.IfaceStats

func (f fakeStats) Stats() []afpacket.IfaceStats { return f }

func (f fakeStats) Err() error { return nil }

func (f fakeStats) LinkResubscribes() uint64 { return 0 }

// gather returns "name{interface}" → value of every sample, and the types by name.
func gather(t *testing.T, c prometheus.Collector) (map[string]float64, map[string]string) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values, types := map[string]float64{}, map[string]string{}
	for _, mf := range mfs {
		types[mf.GetName()] = mf.GetType().String()
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				values[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				values[key] = m.GetGauge().GetValue()
			}
		}
	}
	return values, types
}

func TestCaptureCollector(t *testing.T) {
	values, types := gather(t, exporterCollector(newCaptureExporter(fakeStats{
		{Name: "docker0", Packets: 10, Drops: 1, FreezeQueue: 2},
		{Name: "veth1", Packets: 5},
	}).collect))
	want := map[string]float64{
		"nta_capture_interfaces":                                   2,
		"nta_capture_kernel_packets_total{interface=docker0}":      10,
		"nta_capture_kernel_drops_total{interface=docker0}":        1,
		"nta_capture_kernel_freeze_queue_total{interface=docker0}": 2,
		"nta_capture_kernel_packets_total{interface=veth1}":        5,
		"nta_capture_kernel_drops_total{interface=veth1}":          0,
		"nta_capture_kernel_freeze_queue_total{interface=veth1}":   0,
		"nta_capture_netlink_resubscribes_total":                   0,
	}
	if !reflect.DeepEqual(values, want) {
		t.Errorf("samples:\n got %v\nwant %v", values, want)
	}
	wantTypes := map[string]string{
		"nta_capture_interfaces":                 "GAUGE",
		"nta_capture_kernel_packets_total":       "COUNTER",
		"nta_capture_kernel_drops_total":         "COUNTER",
		"nta_capture_kernel_freeze_queue_total":  "COUNTER",
		"nta_capture_netlink_resubscribes_total": "COUNTER",
	}
	if !reflect.DeepEqual(types, wantTypes) {
		t.Errorf("types = %v, want %v", types, wantTypes)
	}
	values, _ = gather(t, exporterCollector(newCaptureExporter(fakeStats{}).collect))
	if !reflect.DeepEqual(values, map[string]float64{"nta_capture_interfaces": 0, "nta_capture_netlink_resubscribes_total": 0}) {
		t.Errorf("no interfaces: %v, want only nta_capture_interfaces 0 and no resubscribes", values)
	}
}

type deadCapture struct{ fakeStats }

func (deadCapture) Err() error { return errors.New("operation not permitted") }

// partialCapture runs, but some selected interfaces cannot be captured.
type partialCapture struct{ fakeStats }

func (partialCapture) Err() error {
	return fmt.Errorf("%w on 1 selected interface(s) veth1: PACKET_RX_RING: cannot allocate memory", afpacket.ErrInterfacesFailed)
}

func (partialCapture) LinkResubscribes() uint64 { return 3 }

// TestFlowsCollectorReportsIncompleteCapture: interfaces that are selected
// but cannot be captured fail the collector too, and the resubscribes of
// the link feed are exported.
func TestFlowsCollectorReportsIncompleteCapture(t *testing.T) {
	a := flowagg.NewAggregator(flowagg.Config{SnapshotWait: time.Millisecond})
	src := &Sources{Flows: &Flows{Aggregator: a, Capture: partialCapture{fakeStats{{Name: "eth0"}}}}}
	r, err := NewRunner([]string{"flows"}, src, time.Second, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	values, types := gather(t, r)
	if got := values["nta_collector_success{collector=flows}"]; got != 0 {
		t.Errorf("nta_collector_success = %v with an interface that cannot be captured, want 0", got)
	}
	if got := values["nta_capture_netlink_resubscribes_total"]; got != 3 || types["nta_capture_netlink_resubscribes_total"] != "COUNTER" {
		t.Errorf("nta_capture_netlink_resubscribes_total = %v (%s), want counter 3", got, types["nta_capture_netlink_resubscribes_total"])
	}
}

// TestFlowsCollectorReportsDeadCapture: once the capture has stopped, the
// flows collector fails (success 0) instead of serving frozen counters as if
// all were well; while it runs, it succeeds.
func TestFlowsCollectorReportsDeadCapture(t *testing.T) {
	a := flowagg.NewAggregator(flowagg.Config{SnapshotWait: time.Millisecond})
	for _, tc := range []struct {
		capture CaptureSource
		success float64
	}{
		{fakeStats{{Name: "eth0"}}, 1},
		{deadCapture{fakeStats{{Name: "eth0"}}}, 0},
	} {
		src := &Sources{Flows: &Flows{Aggregator: a, Capture: tc.capture}}
		r, err := NewRunner([]string{"flows"}, src, time.Second, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		values, _ := gather(t, r)
		if got := values["nta_collector_success{collector=flows}"]; got != tc.success {
			t.Errorf("%T: nta_collector_success = %v, want %v", tc.capture, got, tc.success)
		}
		if got := values["nta_capture_interfaces"]; got != 1 {
			t.Errorf("%T: nta_capture_interfaces = %v, want 1 (the frozen state is still shown)", tc.capture, got)
		}
	}
}
