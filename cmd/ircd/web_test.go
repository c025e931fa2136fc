package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The daemon serves the web client and IRC over WebSocket on [web]
// listen, next to its TCP listener.
func TestDaemonServesWeb(t *testing.T) {
	d := newDaemon(t, "[web]\nlisten = [\"127.0.0.1:0\"]")
	d.start()
	addr := waitLogMatch(t, d, `msg="web listening" addr=(\S+) tls=false`)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<html") || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET /: %d %q", resp.StatusCode, body[:min(len(body), 80)])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/irc", &websocket.DialOptions{Subprotocols: []string{"text.ircv3.net"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	for _, l := range []string{"PASS alicepw", "NICK alice", "USER alice 0 * :alice"} {
		ws.Write(ctx, websocket.MessageText, []byte(l))
	}
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(msg), " 366 alice ") {
			break
		}
	}
	bob := d.login("bob")
	fmt.Fprintf(bob.c, "PRIVMSG alice :hi web\r\n")
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(string(msg), "PRIVMSG alice :hi web") {
			return
		}
	}
}
