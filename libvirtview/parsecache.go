package libvirtview

import "sync"

// parsedDomain is a domain's last XML and what parseDomain made of it.
type parsedDomain struct {
	xml      string
	dom      Domain // NICs shared with the cache: never modified in place
	dups     int
	noTarget []string // keys of tap-type NICs without target
}

// parseCache remembers the parsed XML of the domains seen in the current
// and the previous full sync, by UUID and name. A full sync reads domains
// concurrently, hence the lock.
type parseCache struct {
	mu        sync.Mutex
	prev, cur map[string]parsedDomain
}

// get returns the parse of x when it is the domain's last XML.
func (c *parseCache) get(uuid, x string) (parsedDomain, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.cur[uuid]; ok && p.xml == x {
		return p, true
	}
	if p, ok := c.prev[uuid]; ok && p.xml == x {
		return p, true
	}
	return parsedDomain{}, false
}

func (c *parseCache) put(uuid string, p parsedDomain) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		c.cur = map[string]parsedDomain{}
	}
	c.cur[uuid] = p
}

// rotate starts a full sync: domains not read again are forgotten at the
// next rotate.
func (c *parseCache) rotate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prev, c.cur = c.cur, make(map[string]parsedDomain, len(c.cur))
}
