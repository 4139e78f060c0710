package ovsview

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"
)

// The testdata was recorded from this lab's ovsdb-server 3.1 (schema 8.3.1)
// with the monitor request the watcher sends, over the raw JSON-RPC socket,
// after:
//
//	ovs-vsctl add-br ntrec0 -- set bridge ntrec0 datapath_type=netdev fail_mode=secure
//	ovs-vsctl add-br ntrec1 -- set bridge ntrec1 datapath_type=netdev
//	ovs-vsctl set-controller ntrec1 tcp:192.0.2.9:6653
//	ovs-vsctl add-port ntrec0 ntrec-p0 -- set interface ntrec-p0 type=patch options:peer=ntrec-p1 \
//	  -- add-port ntrec1 ntrec-p1 -- set interface ntrec-p1 type=patch options:peer=ntrec-p0
//	ovs-vsctl add-port ntrec1 ntrec-vx -- set interface ntrec-vx type=vxlan \
//	  options:remote_ip=192.0.2.50 options:key=5001 options:dst_port=4789
//	ovs-vsctl add-port ntrec0 ntrec-v0 tag=42 -- set interface ntrec-v0 \
//	  external_ids:container_id=abc123 external_ids:container_iface=eth1    # a veth
//	ovs-vsctl add-port ntrec1 ntrec-v1 trunks=10,20 -- set interface ntrec-v1 \
//	  external_ids:attached-mac=52:54:00:aa:bb:cc external_ids:iface-id=port-1 \
//	  external_ids:vm-id=1c4e2b0c-0000-4000-8000-000000000001      # a veth
//	ovs-vsctl add-port ntrec1 ntrec-int -- set interface ntrec-int type=internal

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func dbModel(t testing.TB) model.DatabaseModel {
	t.Helper()
	var schema ovsdb.DatabaseSchema
	readJSON(t, "schema.json", &schema)
	cm, err := clientModel()
	if err != nil {
		t.Fatal(err)
	}
	dm, errs := model.NewDatabaseModel(schema, cm)
	if len(errs) > 0 {
		t.Fatalf("model does not fit the recorded schema: %v", errs)
	}
	return dm
}

// populate fills a cache the way the client does with a monitor reply.
func populate(t testing.TB, dm model.DatabaseModel, u ovsdb.TableUpdates) *cache.TableCache {
	t.Helper()
	lg := logr.Discard()
	tc, err := cache.NewTableCache(dm, nil, &lg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.Populate(u); err != nil {
		t.Fatal(err)
	}
	return tc
}

func recorded(t testing.TB) ovsdb.TableUpdates {
	var u ovsdb.TableUpdates
	readJSON(t, "monitor-reply.json", &u)
	return u
}

func viewOf(t testing.TB, tc *cache.TableCache) (View, int) {
	v, skipped := build(cachedRows(tc), slog.New(slog.DiscardHandler))
	return withStats(&v, shallow(tc, tableInterface)), skipped
}

func findIface(v View, name string) (Bridge, Port, Interface, bool) {
	for _, b := range v.Bridges {
		for _, p := range b.Ports {
			for _, i := range p.Interfaces {
				if i.Name == name {
					return b, p, i, true
				}
			}
		}
	}
	return Bridge{}, Port{}, Interface{}, false
}

func TestBuildRecorded(t *testing.T) {
	v, skipped := viewOf(t, populate(t, dbModel(t), recorded(t)))
	if skipped != 0 {
		t.Errorf("skipped %d rows of a consistent database", skipped)
	}
	if v.Version != "3.1.0" || v.DBVersion != "8.3.1" || v.SystemID == "" {
		t.Errorf("version %q db %q system-id %q", v.Version, v.DBVersion, v.SystemID)
	}
	var names []string
	for _, b := range v.Bridges {
		var ports []string
		for _, p := range b.Ports {
			ports = append(ports, p.Name)
		}
		names = append(names, fmt.Sprintf("%s(%s,%s)%v", b.Name, b.DatapathType, b.FailMode, ports))
	}
	want := []string{"ntrec0(netdev,secure)[ntrec-p0 ntrec-v0 ntrec0]", "ntrec1(netdev,)[ntrec-int ntrec-p1 ntrec-v1 ntrec-vx ntrec1]"}
	if !slices.Equal(names, want) {
		t.Errorf("bridges %v, want %v", names, want)
	}
	if c := v.Bridges[1].Controllers; len(c) != 1 || c[0].Target != "tcp:192.0.2.9:6653" || c[0].Connected {
		t.Errorf("ntrec1 controllers %+v", c)
	}
	for _, tc := range []struct {
		name  string
		check func(Bridge, Port, Interface) string
	}{
		{"ntrec-p0", func(b Bridge, p Port, i Interface) string {
			if b.Name != "ntrec0" || i.Type != "patch" || i.Peer != "ntrec-p1" || p.Tag != -1 {
				return fmt.Sprintf("%s %s peer %q tag %d", b.Name, i.Type, i.Peer, p.Tag)
			}
			return ""
		}},
		{"ntrec-vx", func(b Bridge, p Port, i Interface) string {
			if i.Type != "vxlan" || i.RemoteIP != "192.0.2.50" || i.Key != "5001" || i.DstPort != "4789" || !i.Tunnel() || i.TunnelEgress == "" {
				return fmt.Sprintf("%+v", i)
			}
			return ""
		}},
		{"ntrec-v0", func(b Bridge, p Port, i Interface) string {
			if p.Tag != 42 || i.Type != "system" || i.ContainerID != "abc123" || i.ContainerIface != "eth1" || i.OFPort < 1 || i.MAC == "" || !i.HasStats {
				return fmt.Sprintf("tag %d %+v", p.Tag, i)
			}
			return ""
		}},
		{"ntrec-v1", func(b Bridge, p Port, i Interface) string {
			if !slices.Equal(p.Trunks, []int{10, 20}) || i.AttachedMAC != "52:54:00:aa:bb:cc" || i.IfaceID != "port-1" || i.VMID != "1c4e2b0c-0000-4000-8000-000000000001" {
				return fmt.Sprintf("trunks %v %+v", p.Trunks, i)
			}
			return ""
		}},
		{"ntrec-int", func(b Bridge, p Port, i Interface) string {
			if i.Type != "internal" || p.Bonded() || p.BondMode != "" {
				return fmt.Sprintf("%+v bond %q", i, p.BondMode)
			}
			return ""
		}},
	} {
		b, p, i, ok := findIface(v, tc.name)
		if !ok {
			t.Errorf("%s not in the view", tc.name)
			continue
		}
		if msg := tc.check(b, p, i); msg != "" {
			t.Errorf("%s: %s", tc.name, msg)
		}
	}
}

// rowOf returns the recorded row of the named interface.
func rowOf(t testing.TB, u ovsdb.TableUpdates, table, name string) (string, *ovsdb.Row) {
	for uuid, ru := range u[table] {
		if ru.New != nil && (*ru.New)["name"] == name {
			return uuid, ru.New
		}
	}
	t.Fatalf("no %s row %s in the recording", table, name)
	return "", nil
}

func TestMissingOptionalColumnsAndDanglingRows(t *testing.T) {
	u := recorded(t)
	// An interface OVS has not finished adding: no ofport, mac, state or
	// statistics (columns absent from the update).
	_, row := rowOf(t, u, tableInterface, "ntrec-v0")
	for _, c := range []string{"ofport", "mac_in_use", "admin_state", "link_state", "statistics", "status", "external_ids"} {
		delete(*row, c)
	}
	// A port pointing at an interface the monitor never sent.
	_, prow := rowOf(t, u, tablePort, "ntrec-int")
	(*prow)["interfaces"] = ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "00000000-0000-4000-8000-0000000000aa"}}}
	v, skipped := viewOf(t, populate(t, dbModel(t), u))
	_, p, i, ok := findIface(v, "ntrec-v0")
	if !ok {
		t.Fatal("ntrec-v0 left out for missing optional columns")
	}
	if i.OFPort != -1 || i.MAC != "" || i.AdminState != "" || i.HasStats || i.ContainerID != "" || p.Tag != 42 {
		t.Errorf("ntrec-v0 without optional columns: %+v tag %d", i, p.Tag)
	}
	if skipped != 1 {
		t.Errorf("skipped %d, want 1 (the dangling interface reference)", skipped)
	}
	var found bool
	for _, b := range v.Bridges {
		for _, p := range b.Ports {
			if p.Name == "ntrec-int" {
				found = true
				if len(p.Interfaces) != 0 {
					t.Errorf("ntrec-int interfaces %+v", p.Interfaces)
				}
			}
		}
	}
	if !found {
		t.Error("port ntrec-int with a dangling reference left out entirely")
	}
}

// A row of another type than the model's is refused by libovsdb's mapper;
// the watcher's own join skips anything it cannot read.
func TestUnexpectedRowTypeSkipped(t *testing.T) {
	tc := populate(t, dbModel(t), recorded(t))
	r := cachedRows(tc)
	for uuid := range r.ports {
		r.ports[uuid] = &ovsInterface{Name: "imposter"}
		break
	}
	v, skipped := build(r, slog.New(slog.DiscardHandler))
	if skipped != 1 {
		t.Errorf("skipped %d, want 1", skipped)
	}
	if len(v.Bridges) != 2 {
		t.Errorf("%d bridges", len(v.Bridges))
	}
}

func TestStatisticsUpdateDoesNotRebuild(t *testing.T) {
	w := &Watcher{}
	e := &events{w: w}
	a := &ovsInterface{Name: "x", Options: map[string]string{"peer": "y"}, Statistics: map[string]int{"rx_bytes": 1}}
	b := *a
	b.Statistics = map[string]int{"rx_bytes": 2}
	e.OnUpdate(tableInterface, a, &b)
	if w.dirty.Load() {
		t.Error("a statistics-only update marked the topology dirty")
	}
	c := b
	c.Options = map[string]string{"peer": "z"}
	e.OnUpdate(tableInterface, &b, &c)
	if !w.dirty.Load() {
		t.Error("a new patch peer did not mark the topology dirty")
	}
	w.dirty.Store(false)
	e.OnUpdate(tablePort, &ovsPort{Name: "p"}, &ovsPort{Name: "p", Tag: new(int)})
	if !w.dirty.Load() {
		t.Error("a port update did not mark the topology dirty")
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"":                         DefaultDB,
		"/run/openvswitch/db.sock": "unix:/run/openvswitch/db.sock",
		"unix:/tmp/x.sock":         "unix:/tmp/x.sock",
		"tcp:127.0.0.1:6640":       "tcp:127.0.0.1:6640",
		"tcp:[::1]:6640":           "tcp:[::1]:6640",
	} {
		if got, err := Endpoint(in); err != nil || got != want {
			t.Errorf("Endpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"tcp:host", "ssl:1.2.3.4:6640", "db.sock", "unix:"} {
		if _, err := Endpoint(bad); err == nil {
			t.Errorf("Endpoint(%q) accepted", bad)
		}
	}
}

// scaled returns the recording with n more veth-like interfaces, each on a
// port of its own on ntrec0, as ovsdb-server would send them.
func scaled(t testing.TB, n int) ovsdb.TableUpdates {
	u := recorded(t)
	_, irow := rowOf(t, u, tableInterface, "ntrec-v0")
	_, prow := rowOf(t, u, tablePort, "ntrec-v0")
	var buuid string
	for uuid, ru := range u[tableBridge] {
		if (*ru.New)["name"] == "ntrec0" {
			buuid = uuid
		}
	}
	ports := (*u[tableBridge][buuid].New)["ports"].(ovsdb.OvsSet)
	for k := range n {
		iu, pu := fmt.Sprintf("1%07d-0000-4000-8000-000000000000", k), fmt.Sprintf("2%07d-0000-4000-8000-000000000000", k)
		ir, pr := ovsdb.Row{}, ovsdb.Row{}
		for c, v := range *irow {
			ir[c] = v
		}
		for c, v := range *prow {
			pr[c] = v
		}
		name := fmt.Sprintf("ntsc%05d", k)
		ir["name"], ir["ofport"] = name, 100+k
		pr["name"], pr["interfaces"] = name, ovsdb.UUID{GoUUID: iu}
		u[tableInterface][iu] = &ovsdb.RowUpdate{New: &ir}
		u[tablePort][pu] = &ovsdb.RowUpdate{New: &pr}
		ports.GoSet = append(ports.GoSet, ovsdb.UUID{GoUUID: pu})
	}
	(*u[tableBridge][buuid].New)["ports"] = ports
	return u
}

func TestScaledRecording(t *testing.T) {
	v, skipped := viewOf(t, populate(t, dbModel(t), scaled(t, 100)))
	if skipped != 0 || len(v.Bridges[0].Ports) != 103 {
		t.Fatalf("skipped %d, ntrec0 has %d ports", skipped, len(v.Bridges[0].Ports))
	}
}

// BenchmarkBuild5000Interfaces builds the view of 5,000 interfaces (plus the
// recorded ones) from the monitor reply's wire JSON, as a fresh connection
// does: decode, fill libovsdb's cache, join, read statistics.
//
//	go test -run '^$' -bench 5000 -benchmem ./ovsview/
func BenchmarkBuild5000Interfaces(b *testing.B) {
	dm := dbModel(b)
	wire, err := json.Marshal(scaled(b, 5000))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var u ovsdb.TableUpdates
		if err := json.Unmarshal(wire, &u); err != nil {
			b.Fatal(err)
		}
		v, _ := viewOf(b, populate(b, dm, u))
		if len(v.Bridges[0].Ports) != 5003 {
			b.Fatalf("%d ports", len(v.Bridges[0].Ports))
		}
	}
}

// BenchmarkView5000Interfaces is a scrape's read of an unchanged topology:
// statistics of 5,000 interfaces from the cache.
func BenchmarkView5000Interfaces(b *testing.B) {
	tc := populate(b, dbModel(b), scaled(b, 5000))
	v, _ := build(cachedRows(tc), slog.New(slog.DiscardHandler))
	b.ReportAllocs()
	for b.Loop() {
		_ = withStats(&v, shallow(tc, tableInterface))
	}
}

// BenchmarkJoin5000Interfaces is the watcher's own share of a rebuild after
// a topology change: join the cached rows of 5,000 interfaces into the view
// and read their statistics (libovsdb has decoded and cached them already).
func BenchmarkJoin5000Interfaces(b *testing.B) {
	tc := populate(b, dbModel(b), scaled(b, 5000))
	log := slog.New(slog.DiscardHandler)
	b.ReportAllocs()
	for b.Loop() {
		v, _ := build(cachedRows(tc), log)
		_ = withStats(&v, shallow(tc, tableInterface))
	}
}

// TestRecordedUpdates feeds update notifications recorded from ovsdb-server
// (a statistics refresh by ovs-vswitchd, then `ovs-vsctl set port ntrec-v0
// tag=5`) through libovsdb's cache and the watcher's handler: the first
// changes the counters without a rebuild, the second rebuilds.
func TestRecordedUpdates(t *testing.T) {
	var initial, stats, tag ovsdb.TableUpdates
	readJSON(t, "update-initial.json", &initial)
	readJSON(t, "update-statistics.json", &stats)
	readJSON(t, "update-port-tag.json", &tag)
	tc := populate(t, dbModel(t), initial)
	w := &Watcher{}
	seen, added := make(chan string, 64), make(chan struct{}, 64)
	tc.AddEventHandler(&events{w: w})
	tc.AddEventHandler(&cache.EventHandlerFuncs{
		UpdateFunc: func(table string, _, _ model.Model) { seen <- table },
		AddFunc:    func(string, model.Model) { added <- struct{}{} },
	})
	stop := make(chan struct{})
	defer close(stop)
	go tc.Run(stop)
	rows := 0
	for _, tu := range initial {
		rows += len(tu)
	}
	for range rows { // the initial rows' add events, delivered asynchronously
		select {
		case <-added:
		case <-time.After(5 * time.Second):
			t.Fatal("add events of the initial rows not delivered")
		}
	}
	topo, _ := build(cachedRows(tc), slog.New(slog.DiscardHandler))
	before := withStats(&topo, shallow(tc, tableInterface))
	_, _, iBefore, _ := findIface(before, "ntrec-v0")
	apply := func(u ovsdb.TableUpdates) {
		t.Helper()
		if err := tc.Update(nil, u); err != nil {
			t.Fatal(err)
		}
		for table, tu := range u {
			for range tu {
				select {
				case got := <-seen:
					if got != table {
						t.Fatalf("update event of %s, want %s", got, table)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("no update event of %s", table)
				}
			}
		}
	}
	w.dirty.Store(false)
	apply(stats)
	if w.dirty.Load() {
		t.Error("a statistics refresh marked the topology dirty")
	}
	after := withStats(&topo, shallow(tc, tableInterface)) // the old topology, new counters
	_, _, iAfter, _ := findIface(after, "ntrec-v0")
	if iAfter.Stats == iBefore.Stats || iAfter.Stats.RxBytes < iBefore.Stats.RxBytes {
		t.Errorf("counters did not move forward: %+v then %+v", iBefore.Stats, iAfter.Stats)
	}
	apply(tag)
	if !w.dirty.Load() {
		t.Fatal("a new port tag did not mark the topology dirty")
	}
	v, _ := viewOf(t, tc)
	if _, p, _, _ := findIface(v, "ntrec-v0"); p.Tag != 5 {
		t.Errorf("tag after the update %d, want 5", p.Tag)
	}
}
