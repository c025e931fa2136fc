package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

// wss: the web listener over TLS with the [tls] certificate, HSTS on the
// page.
func TestDaemonServesWebOverTLS(t *testing.T) {
	d := newDaemon(t, "[tls]\nlisten = [\"127.0.0.1:0\"]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n[web]\ntls_listen = [\"127.0.0.1:0\"]")
	cert := writeCert(t, d.dir, "web")
	d.start()
	addr := waitLogMatch(t, d, `msg="web listening" addr=(\S+) tls=true`)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tlsCfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 5 * time.Second}
	resp, err := hc.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Fatalf("GET / over TLS: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "wss://"+addr+"/irc", &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{"text.ircv3.net"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.Write(ctx, websocket.MessageText, []byte("PING wss"))
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(string(msg), "wss") {
			return
		}
	}
}
