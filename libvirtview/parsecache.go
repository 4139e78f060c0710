package libvirtview

// parsedDomain is a domain's last XML and what parseDomain made of it.
type parsedDomain struct {
	xml      string
	dom      Domain // NICs shared with the cache: never modified in place
	dups     int
	noTarget []string // keys of tap-type NICs without target
}

// parseCache remembers the parsed XML of the domains seen in the current
// and the previous full sync, by UUID and name. Only the Run goroutine uses it.
type parseCache struct {
	prev, cur map[string]parsedDomain
}

// get returns the parse of x when it is the domain's last XML.
func (c *parseCache) get(uuid, x string) (parsedDomain, bool) {
	if p, ok := c.cur[uuid]; ok && p.xml == x {
		return p, true
	}
	if p, ok := c.prev[uuid]; ok && p.xml == x {
		return p, true
	}
	return parsedDomain{}, false
}

func (c *parseCache) put(uuid string, p parsedDomain) {
	if c.cur == nil {
		c.cur = map[string]parsedDomain{}
	}
	c.cur[uuid] = p
}

// rotate starts a full sync: domains not read again are forgotten at the
// next rotate.
func (c *parseCache) rotate() { c.prev, c.cur = c.cur, make(map[string]parsedDomain, len(c.cur)) }
