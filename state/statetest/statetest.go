// Package statetest is the one test suite of each state interface the
// server uses (ircd.Presence, Mailbox, Silences, Bus; accounts.Limiter).
// Every implementation runs it, the way soju runs its server tests over
// each database: the embedded store and package local here, the cluster
// backend on NATS in package cluster.
package statetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lobbychat/ircd/ircd"
	"github.com/lobbychat/ircd/state"
)

// MailboxLimits are what a mailbox is opened with.
type MailboxLimits struct {
	Total     int // messages per recipient; 0 = none
	PerSender int // messages per sender per recipient; 0 = none
}

// MailboxKit opens mailboxes for the suite. Open returns a mailbox with
// the given limits on state that outlives it: Reopen (after Close) must
// see everything acknowledged as stored before.
type MailboxKit struct {
	Open   func(t *testing.T, l MailboxLimits) ircd.Mailbox
	Reopen func(t *testing.T) ircd.Mailbox // the same state, reopened; nil if not durable
	Close  func(t *testing.T)
}

func msg(from, sender, text string, at time.Time) state.Message {
	return state.Message{From: from + "!" + from + "@h", Sender: sender, Command: "PRIVMSG", Text: text, Time: at}
}

// RunMailbox checks Append, Pending and Ack.
func RunMailbox(t *testing.T, kit MailboxKit) {
	ctx := context.Background()
	at := time.Date(2026, 3, 14, 15, 9, 26, 123456789, time.UTC)

	t.Run("OrderAndAck", func(t *testing.T) {
		mb := kit.Open(t, MailboxLimits{})
		defer kit.Close(t)
		var ids []uint64
		for i := range 5 {
			m, err := mb.Append(ctx, "bob", msg("alice", "alice", fmt.Sprint("m", i), at.Add(time.Duration(i)*time.Second)))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		if !slices.IsSorted(ids) || slices.Compact(slices.Clone(ids))[len(ids)-1] != ids[4] || len(slices.Compact(slices.Clone(ids))) != 5 {
			t.Fatalf("ids not increasing and distinct: %v", ids)
		}
		got, err := mb.Pending(ctx, "bob")
		if err != nil || len(got) != 5 {
			t.Fatalf("pending = %d, %v", len(got), err)
		}
		for i, m := range got {
			want := msg("alice", "alice", fmt.Sprint("m", i), at.Add(time.Duration(i)*time.Second))
			if m.ID != ids[i] || m.Text != want.Text || m.From != want.From || m.Command != "PRIVMSG" || !m.Time.Equal(want.Time) {
				t.Fatalf("message %d = %+v, want %+v (id %d)", i, m, want, ids[i])
			}
		}
		if other, _ := mb.Pending(ctx, "carol"); len(other) != 0 {
			t.Fatalf("carol has %d messages", len(other))
		}
		if err := mb.Ack(ctx, "bob", ids[2]); err != nil {
			t.Fatal(err)
		}
		// Appended after the Pending snapshot: survives the Ack.
		late, err := mb.Append(ctx, "bob", msg("carol", "carol", "late", at))
		if err != nil {
			t.Fatal(err)
		}
		if late.ID <= ids[4] {
			t.Fatalf("late id %d not above %d", late.ID, ids[4])
		}
		got, _ = mb.Pending(ctx, "bob")
		if texts := texts(got); !slices.Equal(texts, []string{"m3", "m4", "late"}) {
			t.Fatalf("after ack: %v", texts)
		}
		if err := mb.Ack(ctx, "bob", ids[2]); err != nil { // a repeated ack is harmless
			t.Fatal(err)
		}
		if err := mb.Ack(ctx, "bob", late.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := mb.Pending(ctx, "bob"); len(got) != 0 {
			t.Fatalf("after acking all: %v", texts(got))
		}
		// IDs never go back, even once the mailbox was emptied.
		again, err := mb.Append(ctx, "bob", msg("alice", "alice", "again", at))
		if err != nil || again.ID <= late.ID {
			t.Fatalf("id after emptying %d (last %d), %v", again.ID, late.ID, err)
		}
	})

	t.Run("Limits", func(t *testing.T) {
		mb := kit.Open(t, MailboxLimits{Total: 5, PerSender: 2})
		defer kit.Close(t)
		for _, from := range []string{"alice", "carol"} {
			for i := range 2 {
				if _, err := mb.Append(ctx, "bob", msg(from, from, fmt.Sprint(from, i), at)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := mb.Append(ctx, "bob", msg(from, from, "over", at)); !errors.Is(err, state.ErrSenderShareFull) {
				t.Fatalf("%s's third message: %v, want ErrSenderShareFull", from, err)
			}
		}
		if _, err := mb.Append(ctx, "bob", msg("dave", "dave", "fifth", at)); err != nil {
			t.Fatal(err)
		}
		if _, err := mb.Append(ctx, "bob", msg("erin", "erin", "sixth", at)); !errors.Is(err, state.ErrMailboxFull) {
			t.Fatalf("sixth message: %v, want ErrMailboxFull", err)
		}
		got, _ := mb.Pending(ctx, "bob")
		if len(got) != 5 {
			t.Fatalf("%d stored, want 5", len(got))
		}
		// Reading frees both the mailbox and the senders' shares.
		if err := mb.Ack(ctx, "bob", got[1].ID); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if _, err := mb.Append(ctx, "bob", msg("alice", "alice", fmt.Sprint("again", i), at)); err != nil {
				t.Fatalf("alice after her messages were read: %v", err)
			}
		}
		// Other recipients have mailboxes of their own.
		if _, err := mb.Append(ctx, "carol", msg("alice", "alice", "hi", at)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		mb := kit.Open(t, MailboxLimits{})
		defer kit.Close(t)
		const n = 100
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				_, err := mb.Append(ctx, "bob", msg("alice", fmt.Sprint("s", i), fmt.Sprint(i), at))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := mb.Pending(ctx, "bob")
		if err != nil || len(got) != n {
			t.Fatalf("pending %d, %v", len(got), err)
		}
		seen := map[string]bool{}
		for i, m := range got {
			if i > 0 && m.ID <= got[i-1].ID {
				t.Fatalf("ids out of order at %d", i)
			}
			seen[m.Text] = true
		}
		if len(seen) != n {
			t.Fatalf("%d distinct messages, want %d", len(seen), n)
		}
	})

	if kit.Reopen != nil {
		t.Run("Durable", func(t *testing.T) {
			mb := kit.Open(t, MailboxLimits{})
			m, err := mb.Append(ctx, "bob", msg("alice", "alice", "kept", at))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mb.Append(ctx, "bob", msg("alice", "alice", "acked", at)); err != nil {
				t.Fatal(err)
			}
			kit.Close(t)
			mb = kit.Reopen(t)
			defer kit.Close(t)
			got, err := mb.Pending(ctx, "bob")
			if err != nil || len(got) != 2 || got[0].ID != m.ID || !got[0].Time.Equal(at) {
				t.Fatalf("after reopening: %+v, %v", got, err)
			}
			if err := mb.Ack(ctx, "bob", got[0].ID); err != nil {
				t.Fatal(err)
			}
			n, err := mb.Append(ctx, "bob", msg("alice", "alice", "new", at))
			if err != nil || n.ID <= got[1].ID {
				t.Fatalf("id after reopening %d, last %d: %v", n.ID, got[1].ID, err)
			}
		})
	}
}

func texts(ms []state.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

// SilencesKit opens silence lists for the suite, like MailboxKit.
type SilencesKit struct {
	Open   func(t *testing.T) ircd.Silences
	Reopen func(t *testing.T) ircd.Silences
	Close  func(t *testing.T)
}

// RunSilences checks AddSilence, RemoveSilence and Silences.
func RunSilences(t *testing.T, kit SilencesKit) {
	ctx := context.Background()
	sl := kit.Open(t)
	list := func(acct string) []string {
		t.Helper()
		masks, err := sl.Silences(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		return masks
	}
	if got := list("alice"); len(got) != 0 {
		t.Fatalf("new list %v", got)
	}
	for _, m := range []string{"zed!*@*", "bob!*@*", "*!*@10.0.0.*"} {
		if added, err := sl.AddSilence(ctx, "alice", m); err != nil || !added {
			t.Fatalf("add %s: %v %v", m, added, err)
		}
	}
	if added, err := sl.AddSilence(ctx, "alice", "bob!*@*"); err != nil || added {
		t.Fatalf("adding twice: %v %v", added, err)
	}
	if got := list("alice"); !slices.Equal(got, []string{"zed!*@*", "bob!*@*", "*!*@10.0.0.*"}) {
		t.Fatalf("not in the order added: %v", got)
	}
	if removed, err := sl.RemoveSilence(ctx, "alice", "bob!*@*"); err != nil || !removed {
		t.Fatalf("remove: %v %v", removed, err)
	}
	if removed, err := sl.RemoveSilence(ctx, "alice", "bob!*@*"); err != nil || removed {
		t.Fatalf("removing twice: %v %v", removed, err)
	}
	if got := list("bob"); len(got) != 0 {
		t.Fatalf("bob has alice's list: %v", got)
	}
	if kit.Reopen != nil {
		kit.Close(t)
		sl = kit.Reopen(t)
		if got := list("alice"); !slices.Equal(got, []string{"zed!*@*", "*!*@10.0.0.*"}) {
			t.Fatalf("after reopening: %v", got)
		}
	}
	kit.Close(t)
}
