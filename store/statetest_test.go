package store_test

import (
	"path/filepath"
	"testing"

	"github.com/lobbychat/ircd/ircd"
	"github.com/lobbychat/ircd/state/statetest"
	"github.com/lobbychat/ircd/store"
)

// The store runs the suites every Mailbox and Silences implementation runs.
func TestStateSuites(t *testing.T) {
	var st *store.Store
	var path string
	open := func(t *testing.T, opts store.Options) *store.Store {
		t.Helper()
		s, err := store.Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		st = s
		return s
	}
	closeStore := func(t *testing.T) {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}
	t.Run("Mailbox", func(t *testing.T) {
		statetest.RunMailbox(t, statetest.MailboxKit{
			Open: func(t *testing.T, l statetest.MailboxLimits) ircd.Mailbox {
				path = filepath.Join(t.TempDir(), "ircd.db")
				return open(t, store.Options{MailboxLimit: l.Total, MailboxPerSender: l.PerSender})
			},
			Reopen: func(t *testing.T) ircd.Mailbox { return open(t, store.Options{}) },
			Close:  closeStore,
		})
	})
	t.Run("Silences", func(t *testing.T) {
		statetest.RunSilences(t, statetest.SilencesKit{
			Open: func(t *testing.T) ircd.Silences {
				path = filepath.Join(t.TempDir(), "ircd.db")
				return open(t, store.Options{})
			},
			Reopen: func(t *testing.T) ircd.Silences { return open(t, store.Options{}) },
			Close:  closeStore,
		})
	})
}
