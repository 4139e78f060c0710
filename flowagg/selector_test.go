package flowagg

import (
	"reflect"
	"strings"
	"testing"
)

func TestSelectorMatch(t *testing.T) {
	roles := map[string][]string{
		"docker0":     {RoleBridge, RoleDockerBridge},
		"vethab12":    {RoleContainerVeth},
		"vnet0":       {RoleVMTap},
		"virbr0":      {RoleBridge},
		"lo":          {roleLoopback},
		"eth0":        nil,
		"br-0123abcd": {RoleBridge},
	}
	tests := []struct {
		name string
		sel  Selector
		want []string
	}{
		{"glob", Selector{Names: []string{"eth*"}}, []string{"eth0"}},
		{"exact and class", Selector{Names: []string{"lo", "vnet[0-9]"}}, []string{"lo", "vnet0"}},
		{"docker bridges", Selector{Roles: []string{RoleDockerBridge}}, []string{"docker0"}},
		{"any bridge", Selector{Roles: []string{RoleBridge}}, []string{"br-0123abcd", "docker0", "virbr0"}},
		{"container veths and taps", Selector{Roles: []string{RoleContainerVeth, RoleVMTap}}, []string{"vethab12", "vnet0"}},
		{"all skips loopback", Selector{Roles: []string{RoleAll}}, []string{"br-0123abcd", "docker0", "eth0", "vethab12", "virbr0", "vnet0"}},
		{"exclude wins", Selector{Roles: []string{RoleAll}, Names: []string{"eth0"}, Exclude: []string{"eth*", "v*"}}, []string{"br-0123abcd", "docker0"}},
		{"names or roles", Selector{Names: []string{"eth0"}, Roles: []string{RoleVMTap}}, []string{"eth0", "vnet0"}},
		{"empty matches nothing", Selector{}, nil},
	}
	names := []string{"br-0123abcd", "docker0", "eth0", "lo", "vethab12", "virbr0", "vnet0"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, n := range names {
				if tc.sel.Match(n, roles[n]) {
					got = append(got, n)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("selected %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSelectorValidate(t *testing.T) {
	if err := (Selector{Names: []string{"eth[0-"}}).Validate(); err == nil || !strings.Contains(err.Error(), "glob") {
		t.Errorf("bad glob: err = %v, want a glob error", err)
	}
	if err := (Selector{Roles: []string{"docker-bridges"}}).Validate(); err == nil || !strings.Contains(err.Error(), "docker-bridge,") {
		t.Errorf("unknown role: err = %v, want it to list the known roles", err)
	}
	if err := (Selector{Names: []string{"veth*"}, Roles: []string{RoleVMTap}, Exclude: []string{"veth0"}}).Validate(); err != nil {
		t.Errorf("valid selector: %v", err)
	}
}

func TestInferRoles(t *testing.T) {
	links := []LinkInfo{
		{Name: "lo", Index: 1, Kind: "device", Loopback: true},
		{Name: "eth0", Index: 2, Kind: "device"},
		{Name: "docker0", Index: 3, Kind: "bridge"},
		{Name: "br-5f2e9c1a7b3d", Index: 4, Kind: "bridge"},
		{Name: "virbr0", Index: 5, Kind: "bridge"},
		{Name: "veth1a2b3c4", Index: 6, Kind: "veth", MasterIndex: 3},
		{Name: "vethuser", Index: 7, Kind: "veth", MasterIndex: 4},
		{Name: "vethvirt", Index: 8, Kind: "veth", MasterIndex: 5},
		{Name: "vethfree", Index: 9, Kind: "veth"},
		{Name: "vnet12", Index: 10, Kind: "tuntap", MasterIndex: 5},
		{Name: "tun0", Index: 11, Kind: "tuntap"},
		{Name: "macvtap3", Index: 12, Kind: "macvtap"},
		{Name: "br-notdocker", Index: 13, Kind: "bridge"},
		{Name: "vnetx", Index: 14, Kind: "tuntap"},
	}
	want := map[string][]string{
		"lo":              {roleLoopback},
		"docker0":         {RoleBridge, RoleDockerBridge},
		"br-5f2e9c1a7b3d": {RoleBridge, RoleDockerBridge},
		"virbr0":          {RoleBridge},
		"veth1a2b3c4":     {RoleContainerVeth},
		"vethuser":        {RoleContainerVeth},
		"vnet12":          {RoleVMTap},
		"macvtap3":        {RoleVMTap},
		"br-notdocker":    {RoleBridge},
	}
	if got := InferRoles(links); !reflect.DeepEqual(got, want) {
		t.Errorf("InferRoles:\n got %v\nwant %v", got, want)
	}
}

func TestMergeRoles(t *testing.T) {
	base := map[string][]string{"vethab": {RoleContainerVeth}}
	got := mergeRoles(base, map[string][]string{"vethab": {RoleContainerVeth, "lnmp"}, "vnet0": {RoleVMTap}})
	want := map[string][]string{"vethab": {RoleContainerVeth, "lnmp"}, "vnet0": {RoleVMTap}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mergeRoles = %v, want %v", got, want)
	}
	if got := mergeRoles(nil, map[string][]string{"x": {"a"}}); !reflect.DeepEqual(got, map[string][]string{"x": {"a"}}) {
		t.Errorf("mergeRoles(nil, ...) = %v", got)
	}
}
