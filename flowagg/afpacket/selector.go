package afpacket

import (
	"fmt"
	"path"
	"slices"
)

// Selector chooses the interfaces of the host network namespace to capture on.
// An interface is selected when its name matches one of Names or it has one of
// Roles, and its name matches none of Exclude. Roles are opaque strings here:
// the topology layer (package topology, through a RoleSource) owns their
// names and decides which interface has which.
type Selector struct {
	// Names are shell globs (path.Match syntax: *, ?, [a-z]) matched against interface names.
	Names []string
	// Roles are topology roles, e.g. "container-veth", "vm-tap", "all".
	Roles []string
	// Exclude are globs of interface names never captured, even when Names or Roles match.
	Exclude []string
}

// Validate reports a malformed glob. Role names are checked by their owner.
func (s Selector) Validate() error {
	for _, list := range [][]string{s.Names, s.Exclude} {
		for _, g := range list {
			if _, err := path.Match(g, ""); err != nil {
				return fmt.Errorf("interface glob %q: %w — use shell glob syntax (*, ?, [abc])", g, err)
			}
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
	// Up reports IFF_UP.
	Up bool
}
