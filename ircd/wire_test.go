package ircd

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestOverlongLineGets417AndIsNotRelayed(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	long := strings.Repeat("x", 600)
	alice.send("PRIVMSG #lobby :%s", long)
	alice.expect(` 417 alice :Input line was too long$`)
	alice.send("PRIVMSG #lobby :short one")
	bob.expect(`PRIVMSG #lobby :short one$`)
	for _, l := range bob.log {
		if strings.Contains(l, "xxxx") {
			t.Fatalf("part of the long line relayed: %q", l)
		}
	}
}

func TestLongTagsAllowed(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice", "message-tags")
	bob := ts.login("bob", "message-tags")
	tag := "+big=" + strings.Repeat("t", 4000)
	alice.send("@%s PRIVMSG #lobby :with big tag", tag)
	bob.expect(`PRIVMSG #lobby :with big tag$`)
}

func TestNewlinelessFloodDisconnects(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	alice.sendRaw(bytes.Repeat([]byte("A"), maxLineLen+100))
	lines := alice.expectClosed()
	if !strings.Contains(lines[len(lines)-1], "ERROR :Closing link: Input line too long") {
		t.Fatalf("got %q", lines)
	}
	bob.expect(`:alice!.* QUIT :Quit: Input line too long$`)
}

func TestGarbageDoesNotCrash(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	for _, junk := range []string{"\x00\x00\x00", "@", ":", "@tag", ":prefix", "@a :b", " ", "\xff\xfe\xfd", "PRIVMSG", "PRIVMSG #lobby", ":x PRIVMSG", "CAP", "MONITOR +", "SILENCE +", "SILENCE -", "AUTHENTICATE"} {
		alice.sendRaw([]byte(junk + "\r\n"))
	}
	alice.sendRaw([]byte("PRIVMSG #lobby :nul\x00byte and \r cr\r\n"))
	line := bob.expect(`PRIVMSG #lobby :nul`)
	if strings.ContainsAny(line, "\x00\r") || !strings.Contains(line, "nulbyte and  cr") {
		t.Fatalf("not sanitized: %q", line)
	}
	alice.sendRaw([]byte("PRIVMSG #lobby :\xff bad utf8\r\n"))
	alice.expect(`FAIL PRIVMSG INVALID_UTF8 `)
	alice.send("WHOELSE")
	alice.expect(`1 other user online`)
}

func TestLineReader(t *testing.T) {
	input := "one\r\ntwo\n\nthree\r\n" + strings.Repeat("y", 3000) + "\n" + "tail"
	lr := &lineReader{r: strings.NewReader(input)}
	var got []string
	for {
		l, err := lr.readLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(l))
		lr.shrink()
	}
	if len(got) != 5 || got[0] != "one" || got[1] != "two" || got[2] != "" || got[3] != "three" || len(got[4]) != 3000 {
		t.Fatalf("got %q", got)
	}
	flood := &lineReader{r: strings.NewReader(strings.Repeat("z", maxLineLen+10))}
	if _, err := flood.readLine(); err != errLineFlood {
		t.Fatalf("flood: %v", err)
	}
}

func TestTooLong(t *testing.T) {
	if tooLong([]byte(strings.Repeat("a", 510))) {
		t.Error("510 bytes + CRLF is allowed")
	}
	if !tooLong([]byte(strings.Repeat("a", 511))) {
		t.Error("511 bytes + CRLF is too long")
	}
	// A client's share of the tag bytes is 4094 (IRCv3 message-tags).
	if tooLong([]byte("@" + strings.Repeat("t", 4094) + " PRIVMSG #x :hi")) {
		t.Error("4094 bytes of client tags are allowed")
	}
	if !tooLong([]byte("@" + strings.Repeat("t", 4095) + " PRIVMSG #x :hi")) {
		t.Error("4095 bytes of client tags are too many")
	}
	if !tooLong([]byte("@" + strings.Repeat("t", 4095))) {
		t.Error("4095 bytes of client tags and nothing else are too many")
	}
}
