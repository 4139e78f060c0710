package collector

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// The /metrics text path writes the OVS interface counters itself: the same
// lines, byte for byte, as client_golang writes for them.
func TestOVSCountersTextMatchesClientGolang(t *testing.T) {
	_, _, ov := ovsHost()
	// Names the text format must escape, and counters past 1e6.
	ov.Bridges[1].Ports[4].Interfaces[0].Name = `vx"1\a`
	ov.Bridges[1].Ports[4].Interfaces[0].Stats.TxBytes = 12_345_678_901
	c := &ovsCollector{ovs: fakeOVS{view: ov}}
	slow := scrape(t, updater(t, context.Background(), c))
	ctx, ft := WithFlowText(context.Background())
	rest := scrape(t, updater(t, ctx, c))
	var buf bytes.Buffer
	if err := ft.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	fast := buf.String()
	var slowCounters strings.Builder
	for _, l := range strings.SplitAfter(slow, "\n") {
		if strings.Contains(l, "nta_ovs_interface_") && strings.Contains(l, "_total") {
			slowCounters.WriteString(l)
		}
	}
	if slowCounters.Len() == 0 || slowCounters.String() != fast {
		t.Errorf("counter lines differ:\nclient_golang:\n%s\ntext path:\n%s", slowCounters.String(), fast)
	}
	if strings.Contains(rest, "nta_ovs_interface_receive_bytes_total") {
		t.Error("the text path's counters are also in the registry's exposition: families would repeat")
	}
	for _, want := range []string{`interface="vx\"1\\a"`, "1.2345678901e+10\n"} {
		if !strings.Contains(fast, want) {
			t.Errorf("want %s in\n%s", want, fast)
		}
	}
	want, got := parseText(t, slow), parseText(t, rest+fast)
	for name, mf := range want {
		if !proto.Equal(mf, got[name]) {
			t.Errorf("family %s differs", name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d families on the text path, %d through client_golang", len(got), len(want))
	}
}
