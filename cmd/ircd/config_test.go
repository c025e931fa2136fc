package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lobbychat/ircd/accounts"

	"github.com/lobbychat/ircd/ircd"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShippedConfigLoads(t *testing.T) {
	c, err := loadConfig("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Channel.Name != "#lobby" || c.Accounts.MaxFailures != 3 || c.Accounts.Lockout.Duration != time.Minute ||
		len(c.Web.Listen) != 1 || c.Web.Listen[0] != "127.0.0.1:8080" {
		t.Fatalf("unexpected values: %+v", c)
	}
	if !strings.HasSuffix(c.Accounts.UsersFile, filepath.Join("..", "..", "users.txt")) {
		t.Fatalf("users file not relative to the config: %s", c.Accounts.UsersFile)
	}
}

func TestMinimalConfigGetsDefaults(t *testing.T) {
	p := writeConfig(t, "")
	c, err := loadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if c.Server.Listen[0] != "127.0.0.1:6667" || c.Store.Path != filepath.Join(dir, "data", "ircd.db") ||
		c.Accounts.UsersFile != filepath.Join(dir, "users.txt") || c.Store.MailboxLimit != 1000 ||
		c.Presence.Recent.Duration != time.Hour || c.Accounts.OnDuplicate != "reject" || c.Accounts.Guests ||
		c.Accounts.DuplicatePing.Duration != 5*time.Second || c.Store.MailboxPerSender != 100 ||
		c.Store.CheckTimeout.Duration != 30*time.Second || c.Server.CPUs != 1 {
		t.Fatalf("defaults: %+v", c)
	}
}

// The defaults the server applies and the ones config.toml starts from
// are one table.
func TestDefaultsAreTheServers(t *testing.T) {
	c, d := defaultConfig(), ircd.DefaultConfig()
	if c.Limits.SendQ != d.SendQ || c.Limits.MaxClients != d.MaxClients || c.Limits.FloodRate != d.FloodRate ||
		c.Limits.PingInterval.Duration != d.PingInterval || c.Channel.Name != d.Channel || c.Server.Name != d.ServerName {
		t.Fatalf("config defaults %+v differ from the server's %+v", c, d)
	}
}

// A plaintext web listener beyond loopback would carry SASL passwords in
// the clear: allowed only when marked insecure (behind a TLS proxy).
func TestWebListenerOutsideLoopbackNeedsInsecure(t *testing.T) {
	if _, err := loadConfig(writeConfig(t, "[web]\nlisten = [\"0.0.0.0:8080\"]\ninsecure = true\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(writeConfig(t, "[web]\nlisten = [\"127.0.0.1:8080\", \"[::1]:8080\"]\n")); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := map[string]string{
		"[server]\nlisen = [\"x\"]\n":            `unknown key "server.lisen"`,
		"[bogus]\nx = 1\n":                       `unknown key "bogus"`,
		"[accounts]\nlockout = \"soon\"\n":       `"soon" is not a duration`,
		"[accounts]\non_duplicate = \"kick\"\n":  "accounts.on_duplicate",
		"[accounts]\nmax_failures = 0\n":         "accounts.max_failures",
		"[accounts]\nduplicate_ping = \"-1s\"\n": "accounts.duplicate_ping",
		"[channel]\nname = \"lobby\"\n":          "channel.name",
		// The server's own rule: check refuses what run would refuse.
		"[channel]\nname = \"#" + strings.Repeat("x", 62) + "\"\n": "channel.name",
		"[store]\nmailbox_limit = -1\n":                            "store.mailbox_limit",
		"[server]\ncpus = -1\n":                                    "server.cpus",
		"[store]\nmailbox_per_sender = -1\n":                       "store.mailbox_per_sender",
		"[store]\ncheck_timeout = \"-1s\"\n":                       "store.check_timeout",
		"[presence]\nrecent = \"0s\"\n":                            "presence.recent",
		"[log]\nformat = \"xml\"\n":                                "log.format",
		"[accounts]\nguests = \"yes\"\n":                           "guests",
	}
	for body, want := range cases {
		_, err := loadConfig(writeConfig(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: error %v, want mention of %q", body, err, want)
		}
	}
}

func TestCheckSubcommand(t *testing.T) {
	var out, errb strings.Builder
	if code := realMain([]string{"check", "-config", "../../config.toml"}, nil, &out, &errb); code != 0 {
		t.Fatalf("check failed (%d): %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ok (3 accounts)") {
		t.Fatalf("output %q", out.String())
	}
	p := writeConfig(t, "")
	os.WriteFile(filepath.Join(filepath.Dir(p), "users.txt"), []byte("alice pw\n9bad pw\n"), 0o600)
	errb.Reset()
	if code := realMain([]string{"check", "-config", p}, nil, &out, &errb); code == 0 || !strings.Contains(errb.String(), "users.txt:2:") {
		t.Fatalf("check accepted a bad users file (%d): %s", code, errb.String())
	}
}

// A users file with a huge bcrypt cost is refused at once, naming the
// line, instead of hashing at that cost for days (as startup and SIGHUP
// did before).
func TestCheckRefusesHugeBcryptCost(t *testing.T) {
	h, err := accounts.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	p := writeConfig(t, "")
	users := "alice pw\nbob $2a$31$" + h[7:] + "\n"
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "users.txt"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code int
		err  string
	}
	done := make(chan result, 1)
	go func() {
		var out, errb strings.Builder
		code := realMain([]string{"check", "-config", p}, nil, &out, &errb)
		done <- result{code, errb.String()}
	}()
	select {
	case r := <-done:
		want := `users.txt:2: bcrypt cost 31 for account "bob" is above the maximum 14`
		if r.code == 0 || !strings.Contains(r.err, want) {
			t.Fatalf("check exited %d with %q, want non-zero and %q", r.code, r.err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ircd check still running after 10s")
	}
}

func TestPasswdSubcommand(t *testing.T) {
	var out, errb strings.Builder
	if code := realMain([]string{"passwd"}, strings.NewReader("s3cret\n"), &out, &errb); code != 0 {
		t.Fatalf("passwd failed: %s", errb.String())
	}
	hash := strings.TrimSpace(out.String())
	if !strings.HasPrefix(hash, "$2") {
		t.Fatalf("not a bcrypt hash: %q", hash)
	}
	if strings.Contains(out.String()+errb.String(), "s3cret") {
		t.Fatal("password echoed")
	}
	db, err := accounts.Parse(strings.NewReader("erin "+hash+"\n"), "users.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !db.Check("erin", "s3cret") || db.Check("erin", "other") {
		t.Fatal("the printed hash does not check")
	}
}
