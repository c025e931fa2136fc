package statetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lobbychat/ircd/ircd"
	"github.com/lobbychat/ircd/state"
)

// BusKit opens the buses of one or more nodes ("n1", "n2", ...) that see
// each other, for the suite.
type BusKit struct {
	Open  func(t *testing.T) []ircd.Bus
	Close func(t *testing.T)
}

// handler records what a node's bus hands it; it holds the sessions
// named in sessions.
type handler struct {
	node     string
	mu       sync.Mutex
	room     []string
	private  []string
	mail     []string
	ended    []string
	sessions map[string]bool // sessions this node holds; false = closing
	alive    bool            // what Ping answers
}

func (h *handler) Room(ev state.RoomEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.room = append(h.room, ev.Text)
}

func (h *handler) Private(to state.UserInfo, m state.Private) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.sessions[to.Session] {
		return false
	}
	h.private = append(h.private, m.Text)
	return true
}

func (h *handler) MailWaiting(to state.UserInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mail = append(h.mail, to.Session)
}

func (h *handler) End(who state.UserInfo, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = append(h.ended, who.Session+" "+reason)
}

func (h *handler) Ping(who state.UserInfo, _ time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[who.Session] && h.alive
}

func (h *handler) snapshot() (room, private, mail, ended []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.room...), append([]string(nil), h.private...),
		append([]string(nil), h.mail...), append([]string(nil), h.ended...)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// RunBus checks that room events reach every node once and in order, and
// that lines and requests reach the node holding a session.
func RunBus(t *testing.T, kit BusKit) {
	ctx := context.Background()
	buses := kit.Open(t)
	defer kit.Close(t)
	hs := make([]*handler, len(buses))
	for i, b := range buses {
		hs[i] = &handler{node: fmt.Sprint("n", i+1), sessions: map[string]bool{fmt.Sprint("s", i+1): true}, alive: true}
		b.Attach(hs[i])
	}
	user := func(i int) state.UserInfo {
		return state.UserInfo{Nick: fmt.Sprint("u", i+1), Node: fmt.Sprint("n", i+1), Session: fmt.Sprint("s", i+1)}
	}

	// Room events from each node, in order, to every node once.
	const n = 200
	for i := range n {
		b := buses[i%len(buses)]
		if err := b.Room(state.RoomEvent{Kind: state.RoomMessage, From: user(i % len(buses)), Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for j, h := range hs {
		eventually(t, fmt.Sprintf("node %d to get %d room events", j+1, n), func() bool { r, _, _, _ := h.snapshot(); return len(r) >= n })
		room, _, _, _ := h.snapshot()
		if len(room) != n {
			t.Fatalf("node %d got %d room events, want %d", j+1, len(room), n)
		}
		last := map[int]int{}
		for _, e := range room {
			var k int
			fmt.Sscan(e, &k)
			src := k % len(buses)
			if prev, ok := last[src]; ok && k <= prev {
				t.Fatalf("node %d: event %d after %d from the same node", j+1, k, prev)
			}
			last[src] = k
		}
	}

	// Lines and requests go to the node holding the session.
	for i := range buses {
		to := user(i)
		ok, err := buses[0].Private(ctx, to, state.Private{Text: "to " + to.Nick})
		if err != nil || !ok {
			t.Fatalf("private to %s on %s: %v, %v", to.Nick, to.Node, ok, err)
		}
		_, private, _, _ := hs[i].snapshot()
		if len(private) != 1 || private[0] != "to "+to.Nick {
			t.Fatalf("node %d got %q", i+1, private)
		}
		gone := to
		gone.Session = "closed"
		if ok, _ := buses[0].Private(ctx, gone, state.Private{Text: "nobody"}); ok {
			t.Fatal("a session nobody holds took a line")
		}
		if err := buses[0].End(ctx, to, "bye"); err != nil {
			t.Fatal(err)
		}
		if _, _, _, ended := hs[i].snapshot(); len(ended) != 1 || ended[0] != to.Session+" bye" {
			t.Fatalf("node %d ended %q", i+1, ended)
		}
		if alive, err := buses[0].Ping(ctx, to, time.Second); err != nil || !alive {
			t.Fatalf("ping of a live session: %v, %v", alive, err)
		}
		hs[i].mu.Lock()
		hs[i].alive = false
		hs[i].mu.Unlock()
		if alive, _ := buses[0].Ping(ctx, to, 100*time.Millisecond); alive {
			t.Fatal("a silent session answered")
		}
		buses[0].MailWaiting(ctx, to)
		eventually(t, "mail waiting to arrive", func() bool { _, _, m, _ := hs[i].snapshot(); return len(m) == 1 })
	}
	if len(buses) > 1 {
		// A node that is not there: not delivered, no error.
		ghost := state.UserInfo{Nick: "ghost", Node: "gone", Session: "g"}
		if ok, err := buses[0].Private(ctx, ghost, state.Private{Text: "x"}); ok || err != nil {
			t.Fatalf("private to a node that is gone: %v, %v", ok, err)
		}
		if alive, _ := buses[0].Ping(ctx, ghost, 100*time.Millisecond); alive {
			t.Fatal("a session on a node that is gone answered")
		}
	}
}
