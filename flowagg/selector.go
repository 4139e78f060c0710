package flowagg

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Interface roles understood by Selector.Roles. The topology layer (RoleSource)
// may report more roles; InferRoles derives these from link kinds and names
// when it does not.
const (
	// RoleAll matches every interface except loopback.
	RoleAll = "all"
	// RoleBridge is any Linux bridge.
	RoleBridge = "bridge"
	// RoleDockerBridge is a bridge created by dockerd (docker0, br-<12 hex>).
	RoleDockerBridge = "docker-bridge"
	// RoleContainerVeth is the host end of a container's veth pair.
	RoleContainerVeth = "container-veth"
	// RoleVMTap is a tap device of a virtual machine (libvirt vnetN, tapN, macvtapN).
	RoleVMTap = "vm-tap"

	// roleLoopback marks lo (and other IFF_LOOPBACK links), which RoleAll skips.
	roleLoopback = "loopback"
)

var knownRoles = []string{RoleAll, RoleBridge, RoleDockerBridge, RoleContainerVeth, RoleVMTap}

// Selector chooses the interfaces of the host network namespace to capture on.
// An interface is selected when its name matches one of Names or it has one of
// Roles, and its name matches none of Exclude.
type Selector struct {
	// Names are shell globs (path.Match syntax: *, ?, [a-z]) matched against interface names.
	Names []string
	// Roles are topology roles: "docker-bridge", "container-veth", "vm-tap", "bridge", "all".
	Roles []string
	// Exclude are globs of interface names never captured, even when Names or Roles match.
	Exclude []string
}

// Validate reports a malformed glob or an unknown role.
func (s Selector) Validate() error {
	for _, list := range [][]string{s.Names, s.Exclude} {
		for _, g := range list {
			if _, err := path.Match(g, ""); err != nil {
				return fmt.Errorf("interface glob %q: %w — use shell glob syntax (*, ?, [abc])", g, err)
			}
		}
	}
	for _, r := range s.Roles {
		if !slices.Contains(knownRoles, r) {
			return fmt.Errorf("unknown interface role %q — use one of %s", r, strings.Join(knownRoles, ", "))
		}
	}
	return nil
}

// Empty reports whether the selector can match nothing.
func (s Selector) Empty() bool { return len(s.Names) == 0 && len(s.Roles) == 0 }

// Match reports whether the interface called name, having the given roles, is selected.
// Malformed globs never match (Validate reports them).
func (s Selector) Match(name string, roles []string) bool {
	if globAny(s.Exclude, name) {
		return false
	}
	if globAny(s.Names, name) {
		return true
	}
	for _, want := range s.Roles {
		if want == RoleAll && name != "lo" && !slices.Contains(roles, roleLoopback) {
			return true
		}
		if slices.Contains(roles, want) {
			return true
		}
	}
	return false
}

func globAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, err := path.Match(g, name); err == nil && ok {
			return true
		}
	}
	return false
}

// LinkInfo is what capture needs to know about one link of the host namespace.
type LinkInfo struct {
	// Name is the interface name.
	Name string
	// Index is the interface index.
	Index int
	// Kind is the rtnetlink link kind ("veth", "bridge", "tuntap", "macvtap", "device", ...).
	Kind string
	// MasterIndex is the index of the bridge (or bond) the link is enslaved to, 0 if none.
	MasterIndex int
	// Up reports IFF_UP.
	Up bool
	// Loopback reports IFF_LOOPBACK.
	Loopback bool
}

var dockerBridgeName = regexp.MustCompile(`^(docker0|br-[0-9a-f]{12})$`)

// InferRoles derives roles from link kinds, names and bridge membership alone,
// for when no RoleSource (topology layer) is wired or it does not know a link yet:
// bridges, Docker bridges (docker0, br-<id>), veths enslaved to a Docker bridge,
// and tap devices named like libvirt's (vnetN) or tapN/macvtapN.
func InferRoles(links []LinkInfo) map[string][]string {
	byIndex := make(map[int]LinkInfo, len(links))
	for _, l := range links {
		byIndex[l.Index] = l
	}
	isDockerBridge := func(l LinkInfo) bool { return l.Kind == "bridge" && dockerBridgeName.MatchString(l.Name) }
	out := make(map[string][]string, len(links))
	for _, l := range links {
		var roles []string
		if l.Loopback {
			roles = append(roles, roleLoopback)
		}
		if l.Kind == "bridge" {
			roles = append(roles, RoleBridge)
			if isDockerBridge(l) {
				roles = append(roles, RoleDockerBridge)
			}
		}
		if l.Kind == "veth" && l.MasterIndex != 0 {
			if m, ok := byIndex[l.MasterIndex]; ok && isDockerBridge(m) {
				roles = append(roles, RoleContainerVeth)
			}
		}
		if (l.Kind == "tuntap" || l.Kind == "tun" || l.Kind == "macvtap") && isTapName(l.Name) {
			roles = append(roles, RoleVMTap)
		}
		if len(roles) > 0 {
			out[l.Name] = roles
		}
	}
	return out
}

func isTapName(name string) bool {
	for _, p := range []string{"vnet", "tap", "macvtap"} {
		if rest, ok := strings.CutPrefix(name, p); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			return true
		}
	}
	return false
}

// mergeRoles adds the roles of extra to base (both ifname → roles) without duplicates.
func mergeRoles(base, extra map[string][]string) map[string][]string {
	if len(extra) == 0 {
		return base
	}
	if base == nil {
		base = make(map[string][]string, len(extra))
	}
	for name, roles := range extra {
		for _, r := range roles {
			if !slices.Contains(base[name], r) {
				base[name] = append(base[name], r)
			}
		}
	}
	return base
}
