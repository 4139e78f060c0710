package afpacket

import (
	"reflect"
	"strings"
	"testing"
)

func TestSelectorMatch(t *testing.T) {
	roles := map[string][]string{
		"docker0":     {"all", "bridge", "docker-bridge"},
		"vethab12":    {"all", "container-veth"},
		"vnet0":       {"all", "vm-tap"},
		"virbr0":      {"all", "bridge"},
		"lo":          nil,
		"eth0":        {"all"},
		"br-0123abcd": {"all", "bridge"},
	}
	tests := []struct {
		name string
		sel  Selector
		want []string
	}{
		{"glob", Selector{Names: []string{"eth*"}}, []string{"eth0"}},
		{"exact and class", Selector{Names: []string{"lo", "vnet[0-9]"}}, []string{"lo", "vnet0"}},
		{"docker bridges", Selector{Roles: []string{"docker-bridge"}}, []string{"docker0"}},
		{"any bridge", Selector{Roles: []string{"bridge"}}, []string{"br-0123abcd", "docker0", "virbr0"}},
		{"container veths and taps", Selector{Roles: []string{"container-veth", "vm-tap"}}, []string{"vethab12", "vnet0"}},
		{"a role nobody has", Selector{Roles: []string{"ovs-port"}}, nil},
		{"all is a role like any other", Selector{Roles: []string{"all"}}, []string{"br-0123abcd", "docker0", "eth0", "vethab12", "virbr0", "vnet0"}},
		{"exclude wins", Selector{Roles: []string{"all"}, Names: []string{"eth0"}, Exclude: []string{"eth*", "v*"}}, []string{"br-0123abcd", "docker0"}},
		{"names or roles", Selector{Names: []string{"eth0"}, Roles: []string{"vm-tap"}}, []string{"eth0", "vnet0"}},
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
	if err := (Selector{Exclude: []string{"[x"}}).Validate(); err == nil {
		t.Errorf("bad exclude glob: no error")
	}
	if err := (Selector{Names: []string{"veth*"}, Roles: []string{"vm-tap"}, Exclude: []string{"veth0"}}).Validate(); err != nil {
		t.Errorf("valid selector: %v", err)
	}
}
