package local_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/lobbychat/ircd/ircd"
	"github.com/lobbychat/ircd/local"
	"github.com/lobbychat/ircd/state/statetest"
	"github.com/lobbychat/ircd/store"
)

// local.Presence runs the suite every Presence implementation runs, with
// its last-seen records in the embedded store.
func TestPresenceSuite(t *testing.T) {
	var st *store.Store
	var p *local.Presence
	var path string
	open := func(t *testing.T, now func() time.Time) ircd.Presence {
		t.Helper()
		var err error
		if st, err = store.Open(path, store.Options{NoSync: true}); err != nil {
			t.Fatal(err)
		}
		if p, err = local.NewPresence(st, local.PresenceOptions{Now: now, Flush: time.Hour}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	statetest.RunPresence(t, statetest.PresenceKit{
		Open: func(t *testing.T, now func() time.Time) ircd.Presence {
			path = filepath.Join(t.TempDir(), "ircd.db")
			return open(t, now)
		},
		Reopen: open,
		Close: func(t *testing.T) {
			p.Close()
			st.Close()
		},
	})
}

// The direct bus runs the bus suite with its one node.
func TestBusSuite(t *testing.T) {
	statetest.RunBus(t, statetest.BusKit{
		Open:  func(*testing.T) []ircd.Bus { return []ircd.Bus{&local.Bus{}} },
		Close: func(*testing.T) {},
	})
}
