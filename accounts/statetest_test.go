package accounts_test

import (
	"testing"
	"time"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/state/statetest"
)

// The in-process limiter runs the suite every limiter runs.
func TestLimiterSuite(t *testing.T) {
	statetest.RunLimiter(t, statetest.LimiterKit{
		Open: func(t *testing.T, p accounts.LimiterPolicy, now func() time.Time) accounts.Limiter {
			return accounts.NewLoginLimiter(p, now)
		},
		Close: func(*testing.T) {},
	})
}
