package store

import (
	"context"
	"time"

	"github.com/lobbychat/ircd/state"
)

// ctx is what the tests pass to the store; it never ends.
var ctx = context.Background()

// seenAt is a last-seen record with only its time, as records written
// before the details were kept.
func seenAt(at map[string]time.Time) map[string]state.Seen {
	out := make(map[string]state.Seen, len(at))
	for k, t := range at {
		out[k] = state.Seen{At: t}
	}
	return out
}
