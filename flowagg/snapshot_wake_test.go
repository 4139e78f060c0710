package flowagg

import (
	"testing"
	"time"

	"github.com/tangfeixiong/nta/flowagg/decoder"
	"github.com/tangfeixiong/nta/internal/frametest"
)

// TestSnapshotRequestWakesOwner: a request calls the table's waker after it
// is registered, so the Publish the wake causes answers it; without a waker
// (SetWaker(nil)) nothing is called.
func TestSnapshotRequestWakesOwner(t *testing.T) {
	_, tb := testTable(Config{})
	tb.Add(frametest.UDP4Frame(t, "10.0.0.1", "10.0.0.2", 1000, 53, 20), 0, decoder.DirIn, t0)
	tb.Publish()
	woken := make(chan struct{}, 1)
	tb.SetWaker(func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	})
	owner := make(chan struct{})
	go func() { // the owner loop, asleep until woken
		defer close(owner)
		<-woken
		tb.Publish()
	}()
	select {
	case <-tb.requestSnapshot():
	case <-time.After(5 * time.Second):
		t.Fatal("the woken owner's Publish did not answer the request")
	}
	<-owner
	if s := tb.Published(); s == nil || s.Total.Packets != 1 {
		t.Fatalf("published %+v, want the table with 1 frame", s)
	}

	tb.SetWaker(nil)
	tb.requestSnapshot()
	select {
	case <-woken:
		t.Fatal("waker called after SetWaker(nil)")
	default:
	}
}

// TestPublishPartCopiesInSlices: PublishPart copies a large table in slices
// even when no packet arrived (the ring loop checks for a ready block
// between them), says when the copy is done, and the snapshot is complete.
func TestPublishPartCopiesInSlices(t *testing.T) {
	const flows = 100_000
	a := NewAggregator(Config{MaxFlowsPerInterface: 2 * flows, MaxFlowsTotal: 2 * flows, IdleTimeout: -1})
	tb := a.Interface("eth0")
	for _, f := range frametest.Arena(t, flows) {
		tb.Add(f, 64, decoder.DirIn, t0)
	}
	if tb.PublishPart() {
		t.Fatal("PublishPart reports a copy in progress before any request")
	}
	done := tb.requestSnapshot()
	calls := 0
	for tb.PublishPart() {
		if calls++; calls > 100_000 {
			t.Fatal("copy never completed")
		}
	}
	calls++
	select {
	case <-done:
	default:
		t.Fatal("PublishPart reported the copy done but the request is not answered")
	}
	t.Logf("100k-flow snapshot copied over %d PublishPart calls", calls)
	if calls < 2 {
		t.Errorf("copied in %d call: want slices, the ring loop drains blocks between them", calls)
	}
	if s := tb.Published(); len(s.Flows) != flows || s.FlowSum() != s.Total {
		t.Fatalf("snapshot has %d flows summing to %+v, want %d flows summing to %+v", len(s.Flows), s.FlowSum(), flows, s.Total)
	}
}
