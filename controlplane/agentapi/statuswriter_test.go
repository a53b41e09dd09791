package agentapi

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/courierhq/courier/controlplane/store"
)

// eventStore records the batches of RecordAgentEvents; everything else of
// store.Store is nil and panics if called.
type eventStore struct {
	store.Store
	mu      sync.Mutex
	batches [][]store.AgentEvent
	// gate, when set, holds every call until it is closed.
	gate chan struct{}
	// fail, when set, decides a call's error before it is recorded.
	fail func(evs []store.AgentEvent) error
	// missing workspaces are reported as such.
	missing map[string]bool
}

func (s *eventStore) RecordAgentEvents(ctx context.Context, evs []store.AgentEvent) ([]int, error) {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(evs); err != nil {
			return nil, err
		}
	}
	s.batches = append(s.batches, append([]store.AgentEvent(nil), evs...))
	var missing []int
	for i, ev := range evs {
		if s.missing[ev.WorkspaceID] && ev.Kind != store.AgentEventDisconnected {
			missing = append(missing, i)
		}
	}
	return missing, nil
}

// written returns the workspace IDs recorded, in order, and the number of
// store calls that recorded them.
func (s *eventStore) written() ([]string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, b := range s.batches {
		for _, ev := range b {
			ids = append(ids, ev.WorkspaceID)
		}
	}
	return ids, len(s.batches)
}

func disconnect(id string) store.AgentEvent {
	return store.AgentEvent{Kind: store.AgentEventDisconnected, WorkspaceID: id, ConnID: "c-" + id}
}

func newTestWriter(st store.Store) (*statusWriter, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	w := newStatusWriter(st, zap.New(core))
	w.retry, w.flush = 10*time.Millisecond, 2*time.Second
	return w, logs
}

// While one batch is being written, every event queued meanwhile goes
// into the next: 200 events cost 2 store calls, in order.
func TestStatusWriterBatchesWhatQueuesDuringAWrite(t *testing.T) {
	st := &eventStore{gate: make(chan struct{})}
	w, _ := newTestWriter(st)
	defer w.close()
	var want []string
	for i := range 200 {
		id := fmt.Sprintf("w%03d", i)
		want = append(want, id)
		if !w.add(disconnect(id)) {
			t.Fatal("add refused before close")
		}
	}
	close(st.gate)
	if err := w.wait(context.Background(), disconnect("last")); err != nil {
		t.Fatal(err)
	}
	ids, calls := st.written()
	want = append(want, "last")
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("written out of order or incompletely: %v", ids)
	}
	// The first call may take 1 to 200 events; the rest go 256 a call.
	if calls > 3 {
		t.Fatalf("%d store calls for 201 events queued behind one write; want at most 3", calls)
	}
}

// A waited event hears its own outcome: ErrNotFound for a missing
// workspace, nil for the others of the same batch.
func TestStatusWriterWaitersHearTheirOwnOutcome(t *testing.T) {
	st := &eventStore{gate: make(chan struct{}), missing: map[string]bool{"gone": true}}
	w, _ := newTestWriter(st)
	defer w.close()
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, id := range []string{"a", "gone", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.wait(context.Background(), store.AgentEvent{Kind: store.AgentEventApplied, WorkspaceID: id})
		}()
	}
	time.Sleep(20 * time.Millisecond) // let them queue behind the gate
	close(st.gate)
	wg.Wait()
	if errs[0] != nil || !errors.Is(errs[1], store.ErrNotFound) || errs[2] != nil {
		t.Fatalf("outcomes %v; want nil, ErrNotFound, nil", errs)
	}
}

// While the database is unavailable, unwaited events are kept and written
// once it is back; waited ones fail at once. One error log for the
// episode, one line when it ends.
func TestStatusWriterKeepsEventsWhileTheDatabaseIsUnavailable(t *testing.T) {
	var down sync.Mutex
	isDown := true
	st := &eventStore{fail: func([]store.AgentEvent) error {
		down.Lock()
		defer down.Unlock()
		if isDown {
			return fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
		}
		return nil
	}}
	w, logs := newTestWriter(st)
	defer w.close()
	w.add(disconnect("kept-1"))
	w.add(disconnect("kept-2"))
	if err := w.wait(context.Background(), disconnect("waited")); store.Unavailable(err) == nil {
		t.Fatalf("a waited event while the database is down: %v; want its unavailability", err)
	}
	time.Sleep(100 * time.Millisecond) // several retries
	down.Lock()
	isDown = false
	down.Unlock()
	if err := w.wait(context.Background(), disconnect("after")); err != nil {
		t.Fatal(err)
	}
	ids, _ := st.written()
	if !reflect.DeepEqual(ids, []string{"kept-1", "kept-2", "after"}) {
		t.Fatalf("written %v; want the kept events, then the new one", ids)
	}
	if n := logs.FilterMessageSnippet("could not record agent status changes").Len(); n != 1 {
		t.Fatalf("%d error lines for one outage; want 1", n)
	}
	// The line follows the write whose waiter just returned.
	deadline := time.Now().Add(5 * time.Second)
	for logs.FilterMessage("agent status changes are recorded again").Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	w.close()
	if n := logs.FilterMessage("agent status changes are recorded again").Len(); n != 1 {
		t.Fatalf("%d recovery lines; want 1", n)
	}
}

// A batch refused for another reason is written event by event: the bad
// one is logged and the rest are not lost.
func TestStatusWriterIsolatesABadEvent(t *testing.T) {
	st := &eventStore{gate: make(chan struct{}), fail: func(evs []store.AgentEvent) error {
		for _, ev := range evs {
			if ev.WorkspaceID == "bad" {
				return errors.New("constraint violated")
			}
		}
		return nil
	}}
	w, logs := newTestWriter(st)
	defer w.close()
	w.add(disconnect("one"))
	w.add(disconnect("bad"))
	w.add(disconnect("two"))
	close(st.gate)
	if err := w.wait(context.Background(), disconnect("three")); err != nil {
		t.Fatal(err)
	}
	ids, _ := st.written()
	if got := strings.Join(ids, ","); got != "one,two,three" {
		t.Fatalf("written %s; want one,two,three", got)
	}
	if logs.FilterMessage("could not record an agent status change").Len() != 1 {
		t.Fatalf("the bad event was not logged once: %v", logs.All())
	}
}

// close writes what is queued, then refuses more; a second close is a
// no-op. With the database down at close, it gives up after flush.
func TestStatusWriterClose(t *testing.T) {
	st := &eventStore{gate: make(chan struct{})}
	w, _ := newTestWriter(st)
	w.add(disconnect("queued-1"))
	w.add(disconnect("queued-2"))
	go func() {
		time.Sleep(20 * time.Millisecond)
		close(st.gate)
	}()
	w.close()
	w.close()
	if ids, _ := st.written(); len(ids) != 2 {
		t.Fatalf("close wrote %v; want both queued events", ids)
	}
	if w.add(disconnect("late")) {
		t.Fatal("add accepted an event after close")
	}
	if err := w.wait(context.Background(), disconnect("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait after close: %v, want ErrClosed", err)
	}

	down := &eventStore{fail: func([]store.AgentEvent) error { return fmt.Errorf("dial: %w", syscall.ECONNREFUSED) }}
	w2, logs := newTestWriter(down)
	w2.flush = 50 * time.Millisecond
	w2.add(disconnect("lost"))
	start := time.Now()
	w2.close()
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("close took %v with the database down", d)
	}
	if logs.FilterMessageSnippet("not recorded at shutdown").Len() != 1 {
		t.Fatalf("the events lost at shutdown were not logged: %v", logs.All())
	}
	// A writer that never had an event closes at once.
	w3, _ := newTestWriter(st)
	w3.close()
}

// Past maxQueued, the oldest unwaited event is dropped, and the drops are
// logged with their count.
func TestStatusWriterBoundsItsQueue(t *testing.T) {
	st := &eventStore{gate: make(chan struct{})}
	w, logs := newTestWriter(st)
	w.maxQueued = 10
	w.add(disconnect("in-flight")) // taken by the loop, held at the gate
	for {
		w.mu.Lock()
		n := len(w.queue)
		w.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 15 {
		w.add(disconnect(fmt.Sprintf("q%02d", i)))
	}
	close(st.gate)
	w.close()
	ids, _ := st.written()
	want := []string{"in-flight"}
	for i := 5; i < 15; i++ {
		want = append(want, fmt.Sprintf("q%02d", i))
	}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("written %v; want the in-flight event and the newest 10", ids)
	}
	if pending, dropped := w.backlog(); pending != 0 || dropped != 5 {
		t.Fatalf("backlog after close: %d pending, %d dropped; want 0 and 5", pending, dropped)
	}
	e := logs.FilterMessageSnippet("agent status changes dropped").All()
	if len(e) != 1 || e[0].ContextMap()["dropped"] != int64(5) {
		t.Fatalf("drop logs %v; want one saying 5", e)
	}
}
