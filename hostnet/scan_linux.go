//go:build linux

package hostnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
)

// Scan reads every network namespace of the host and every link in each.
//
// Problems with single namespaces (permission denied, a dump failing) are
// recorded in Snapshot.Errors and the namespace is listed without links;
// namespaces that vanish while being scanned are left out silently. Scan
// fails only when the host namespace itself cannot be read, or when ctx ends
// before the scan does. A deadline on ctx also bounds every netlink request.
func (s *Scanner) Scan(ctx context.Context) (*Snapshot, error) {
	d, err := s.discover(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]Namespace, len(d.namespaces))
	inoToID := make(map[uint64]string, len(d.namespaces))
	for _, ns := range d.namespaces {
		byID[ns.ID] = ns
		inoToID[ns.Inode] = ns.ID
	}

	// Phase 1: dump every namespace, a few at a time.
	canEnter := s.canEnterNamespaces()
	reads := make([]nsRead, len(d.namespaces))
	parallel(ctx, len(reads), s.workers, func(i int) {
		rd := &reads[i]
		rd.ns = d.namespaces[i]
		h, recs, warn, err := s.readNamespace(ctx, rd.ns, d.selfIno, canEnter)
		rd.recs, rd.warn, rd.err = recs, warn, err
		if err != nil {
			return
		}
		rd.nsids = s.cachedNsids(rd.ns.Inode, inoToID)
		for nsid := range neededNsids(recs) {
			if _, ok := rd.nsids[nsid]; !ok {
				rd.handle = h // keep it to ask the kernel in phase 2
				return
			}
		}
		h.Close()
	})
	defer func() {
		for i := range reads {
			if reads[i].handle != nil {
				reads[i].handle.Close()
			}
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("scan network namespaces: %w", err)
	}
	if len(reads) == 0 || reads[0].ns.ID != HostID || reads[0].err != nil {
		var herr error
		if len(reads) > 0 {
			herr = reads[0].err
		}
		return nil, fmt.Errorf("read host network namespace: %w", herr)
	}

	snap := &Snapshot{Errors: d.errs, Namespaces: make([]Namespace, 0, len(reads))}
	total := 0
	for i := range reads {
		total += len(reads[i].recs)
	}
	recs := make([]linkRec, 0, total)
	present := make(map[uint64]bool, len(reads))
	for i := range reads {
		rd := &reads[i]
		switch {
		case rd.err != nil && (isVanished(rd.err) || !stillThere(rd.ns)):
			s.log.Debug("namespace vanished during scan", "netns", rd.ns.ID, "path", rd.ns.Path, "err", rd.err)
			continue
		case rd.warn != nil && !stillThere(rd.ns):
			s.log.Debug("namespace vanished during scan", "netns", rd.ns.ID, "path", rd.ns.Path, "err", rd.warn)
			continue
		case rd.err != nil:
			s.log.Debug("cannot read namespace", "netns", rd.ns.ID, "path", rd.ns.Path, "err", rd.err)
			snap.Errors = append(snap.Errors, &NamespaceError{ID: rd.ns.ID, Path: rd.ns.Path, Err: rd.err})
		case rd.warn != nil:
			snap.Errors = append(snap.Errors, &NamespaceError{ID: rd.ns.ID, Path: rd.ns.Path, Err: rd.warn})
		}
		present[rd.ns.Inode] = true
		snap.Namespaces = append(snap.Namespaces, rd.ns)
		recs = append(recs, rd.recs...)
	}
	t := newLinkTable(recs)

	// Phase 2: ask viewers with uncached netnsids about plausible targets.
	parallel(ctx, len(reads), s.workers, func(i int) {
		if rd := &reads[i]; rd.handle != nil {
			s.queryNsids(rd, t, byID)
			rd.handle.Close()
			rd.handle = nil
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("scan network namespaces: %w", err)
	}
	nsids := make(map[string]map[int]string, len(reads))
	for i := range reads {
		if reads[i].err == nil {
			nsids[reads[i].ns.ID] = reads[i].nsids
		}
	}
	t.resolvePeers(nsids)
	s.evictNsids(present)

	snap.Links = make([]Link, len(t.recs))
	for i := range t.recs {
		snap.Links[i] = t.recs[i].Link
	}
	slices.SortFunc(snap.Links, compareLinks)
	s.warnErrors(snap.Errors)
	return snap, nil
}

// canEnterNamespaces reports whether CapEff has CAP_SYS_ADMIN, which setns
// needs: without it, entering each namespace is not even tried. When the
// capabilities cannot be read, it is tried.
func (s *Scanner) canEnterNamespaces() bool {
	f, err := os.Open(filepath.Join(s.proc, "self/status"))
	if err != nil {
		return true
	}
	defer f.Close()
	eff, err := parseCapEff(f)
	return err != nil || eff&(1<<capSysAdmin) != 0
}

// queryNsids asks the kernel, inside viewer rd, which netnsid it gives to the
// candidate namespaces of every netnsid its links use and the cache missed.
func (s *Scanner) queryNsids(rd *nsRead, t *linkTable, byID map[string]Namespace) {
	asked := make(map[string]bool)
	for nsid := range neededNsids(rd.recs) {
		if _, ok := rd.nsids[nsid]; ok {
			continue
		}
		for _, cand := range t.candidates(rd.ns.ID, nsid) {
			if asked[cand] {
				continue
			}
			asked[cand] = true
			target := byID[cand]
			fd, err := openNS(target)
			if err != nil {
				continue // vanished meanwhile
			}
			id, err := rd.handle.GetNetNsIdByFd(int(fd))
			fd.Close()
			if err != nil {
				s.log.Debug("RTM_GETNSID failed", "viewer", rd.ns.ID, "target", cand, "err", err)
				continue
			}
			if id < 0 {
				continue // the viewer has no id for it: not the peer's namespace
			}
			rd.nsids[id] = cand
			s.storeNsid(rd.ns.Inode, target.Inode, id)
			if id == nsid {
				break
			}
		}
	}
}

// cachedNsids returns the cached netnsid mapping of one viewer, restricted to
// namespaces that exist now. Two targets claiming one nsid (an inode reused by
// a new namespace between scans) are both dropped, to be asked again.
func (s *Scanner) cachedNsids(viewer uint64, inoToID map[uint64]string) map[int]string {
	out := make(map[int]string)
	s.mu.Lock()
	defer s.mu.Unlock()
	targets := s.nsids[viewer]
	var bad []int
	for target, nsid := range targets {
		id, ok := inoToID[target]
		if !ok {
			continue
		}
		if _, dup := out[nsid]; dup {
			bad = append(bad, nsid)
		}
		out[nsid] = id
	}
	for _, nsid := range bad {
		delete(out, nsid)
		for target, n := range targets {
			if n == nsid {
				delete(targets, target)
			}
		}
	}
	return out
}

func (s *Scanner) storeNsid(viewer, target uint64, nsid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.nsids[viewer]
	if m == nil {
		m = make(map[uint64]int)
		s.nsids[viewer] = m
	}
	m[target] = nsid
}

// evictNsids forgets mappings that involve namespaces not seen in this scan.
func (s *Scanner) evictNsids(present map[uint64]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for viewer, targets := range s.nsids {
		if !present[viewer] {
			delete(s.nsids, viewer)
			continue
		}
		for target := range targets {
			if !present[target] {
				delete(targets, target)
			}
		}
	}
}

// parallel runs fn(0..n-1) on at most workers goroutines; it stops handing
// out work once ctx is done.
func parallel(ctx context.Context, n, workers int, fn func(i int)) {
	workers = min(workers, n)
	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
