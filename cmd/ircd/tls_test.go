package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and returns it.
func writeCert(t *testing.T, dir, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func TestTLSListenerAndCertReload(t *testing.T) {
	d := newDaemon(t, "[tls]\nlisten = [\"127.0.0.1:0\"]\ncert = \"cert.pem\"\nkey = \"key.pem\"")
	first := writeCert(t, d.dir, "first")
	d.start()
	tlsAddr := d.tlsAddr

	dial := func(want *x509.Certificate) *tls.Conn {
		pool := x509.NewCertPool()
		pool.AddCert(want)
		c, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("tls dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	conn := dial(first)
	if v := conn.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Fatalf("negotiated %x", v)
	}
	alice := &lineConn{t: t, c: conn, r: bufio.NewReader(conn)}
	fmt.Fprintf(conn, "PASS alicepw\r\nNICK alice\r\nUSER a 0 * :a\r\n")
	alice.expect(` 366 alice `)

	// TLS 1.1 is refused.
	if c, err := tls.Dial("tcp", tlsAddr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Fatal("TLS 1.1 accepted")
	}

	// A new certificate is served after SIGHUP; the open session lives on.
	second := writeCert(t, d.dir, "second")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, d, "reloaded config")
	dial(second)
	fmt.Fprintf(conn, "PING :still-here\r\n")
	alice.expect(`PONG .*still-here$`)
}

func waitLog(t *testing.T, d *testDaemon, text string) {
	t.Helper()
	waitLogMatch(t, d, regexp.QuoteMeta(text))
}

// waitLogMatch waits for the current run's log to match re and returns
// its capture group (the whole match if it has none).
func waitLogMatch(t *testing.T, d *testDaemon, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(d.log)
		if m := rx.FindSubmatch(b); m != nil {
			return string(m[len(m)-1])
		}
		select {
		case <-d.exited:
			t.Fatalf("daemon exited (%v) before its log matched %q:\n%s", d.exitErr, re, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("log never matched %q:\n%s", re, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	d := newDaemon(t, "[metrics]\nlisten = \"127.0.0.1:0\"")
	d.start()
	metricsAddr := d.metricsAddr
	alice := d.login("alice")
	fmt.Fprintf(alice.c, "PRIVMSG bob :stored\r\n")
	alice.expect(` 301 alice bob `)
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"ircd_users_logged_in 1", "ircd_logins_total 1", "ircd_offline_stored_total 1",
		"ircd_messages_relayed_total 1", "ircd_connections 1", "ircd_sendq_disconnects_total 0", "ircd_lockouts_total 0",
		"ircd_store_corrupt_records_total 0"} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// SIGHUP applies the reloadable config (here the MOTD); a broken config
// keeps the old one and says why.
func TestSIGHUPReloadsConfig(t *testing.T) {
	d := newDaemon(t)
	d.start()
	cfgPath := filepath.Join(d.dir, "config.toml")
	orig, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, append(orig, []byte("\n[log]\nlevel = \"loud\"\n")...), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, d, "keeping the old config")
	os.WriteFile(cfgPath, []byte(strings.Replace(string(orig), "[server]\n", "[server]\nmotd = \"fresh motd\"\n", 1)), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, d, "reloaded config")
	alice := d.login("alice")
	fmt.Fprintf(alice.c, "MOTD\r\n")
	alice.expect(` 372 alice :- fresh motd$`)
}

// A users file broken on reload keeps the old accounts and names the line.
func TestSIGHUPBrokenUsersKeepsOld(t *testing.T) {
	d := newDaemon(t)
	d.start()
	os.WriteFile(filepath.Join(d.dir, "users.txt"), []byte("alice alicepw\n7bad x\n"), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, d, "users.txt:2:")
	d.login("bob") // bob still exists
}

// An account removed from users.txt is disconnected on SIGHUP.
func TestSIGHUPRemovedAccountDisconnected(t *testing.T) {
	d := newDaemon(t)
	d.start()
	bob := d.login("bob")
	os.WriteFile(filepath.Join(d.dir, "users.txt"), []byte("alice alicepw\n"), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	bob.expect(`^ERROR :Closing link: Unauthorized \(account removed\)$`)
}
