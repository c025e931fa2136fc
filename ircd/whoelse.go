package ircd

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/state"
)

// WHOELSE and WHOLASTHR: who else is online, and who was in the last
// hour. Replies are server NOTICEs, which every client shows cleanly.

// noticeList sends items as server NOTICEs, each line under the 512-byte
// limit, with head before the first item of each line.
func (c *client) noticeList(head string, items []string) {
	limit := maxMessageLen - len(c.srv.conf().ServerName) - len(c.nick) - len(head) - 40
	for _, line := range chunkWords(items, limit) {
		c.notice(head + line)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func handleWHOELSE(c *client, _ *irc.Message) {
	var names []string
	for _, u := range c.srv.online() {
		if u.Session != c.session {
			names = append(names, u.Nick)
		}
	}
	c.noticeList("Online: ", names)
	c.notice(plural(len(names), "other user", "other users") + " online")
}

func handleWHOLASTHR(c *client, _ *irc.Message) {
	s := c.srv
	now := s.now()
	window := s.conf().Recent
	type seen struct{ key, text string }
	var list []seen
	for _, u := range s.online() {
		if u.Session != c.session {
			list = append(list, seen{accounts.Fold(u.Nick), u.Nick + " (online now)"})
		}
	}
	db := s.accounts.DB()
	s.presence.Recent(now.Add(-window), func(r state.Seen) bool {
		key := accounts.Fold(r.Nick)
		if key == c.key {
			return true
		}
		name := r.Nick
		if canonical, ok := db.Lookup(key); ok {
			name = canonical
		}
		list = append(list, seen{key, fmt.Sprintf("%s (left %s UTC, %s ago)", name, r.At.UTC().Format("15:04"), ago(now.Sub(r.At)))})
		return true
	})
	slices.SortFunc(list, func(a, b seen) int { return strings.Compare(a.key, b.key) })
	items := make([]string, len(list))
	for i, l := range list {
		items[i] = l.text
		if i < len(list)-1 {
			items[i] += ","
		}
	}
	c.noticeList("Last "+shortDuration(window)+": ", items)
	c.notice(plural(len(list), "other user", "other users") + " connected in the last " + shortDuration(window))
}

func ago(d time.Duration) string {
	if d < time.Minute {
		return strconv.Itoa(int(d.Seconds())) + "s"
	}
	return strconv.Itoa(int(d.Minutes())) + "m"
}

func shortDuration(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "hour"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d.Hours())) + " hours"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d.Minutes())) + " minutes"
	}
	return d.String()
}
