package flowagg

import (
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeStats []IfaceStats

func (f fakeStats) Stats() []IfaceStats { return f }

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
	values, types := gather(t, NewCaptureCollector(fakeStats{
		{Name: "docker0", Packets: 10, Drops: 1, FreezeQueue: 2},
		{Name: "veth1", Packets: 5},
	}))
	want := map[string]float64{
		"nta_capture_interfaces":                                   2,
		"nta_capture_kernel_packets_total{interface=docker0}":      10,
		"nta_capture_kernel_drops_total{interface=docker0}":        1,
		"nta_capture_kernel_freeze_queue_total{interface=docker0}": 2,
		"nta_capture_kernel_packets_total{interface=veth1}":        5,
		"nta_capture_kernel_drops_total{interface=veth1}":          0,
		"nta_capture_kernel_freeze_queue_total{interface=veth1}":   0,
	}
	if !reflect.DeepEqual(values, want) {
		t.Errorf("samples:\n got %v\nwant %v", values, want)
	}
	wantTypes := map[string]string{
		"nta_capture_interfaces":                "GAUGE",
		"nta_capture_kernel_packets_total":      "COUNTER",
		"nta_capture_kernel_drops_total":        "COUNTER",
		"nta_capture_kernel_freeze_queue_total": "COUNTER",
	}
	if !reflect.DeepEqual(types, wantTypes) {
		t.Errorf("types = %v, want %v", types, wantTypes)
	}
	values, _ = gather(t, NewCaptureCollector(fakeStats{}))
	if !reflect.DeepEqual(values, map[string]float64{"nta_capture_interfaces": 0}) {
		t.Errorf("no interfaces: %v, want only nta_capture_interfaces 0", values)
	}
}
