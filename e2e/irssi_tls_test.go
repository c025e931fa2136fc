package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 as
// cert.pem and key.pem in dir.
func writeTestCert(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
}

// tlsServerConfig listens with and without TLS, with the certificate
// writeTestCert leaves in the config's folder.
const tlsServerConfig = `[server]
name = "irc.e2e.test"
network = "E2ENet"
listen = ["127.0.0.1:0"]
[channel]
topic = "e2e lobby"
[tls]
listen = ["127.0.0.1:0"]
cert = "cert.pem"
key = "key.pem"
`

// irssi logs in over TLS (verifying the server's certificate) and talks
// with a plaintext user in the same channel.
func TestIrssiTLS(t *testing.T) {
	t.Parallel()
	requireTools(t, "irssi", "tmux")
	dir := t.TempDir()
	writeTestCert(t, dir)
	cfg := tlsServerConfig
	s := startServerConfig(t, dir, cfg, defaultUsers)
	bob := dialRaw(t, s)
	bob.Login("bob", "bobpw")

	c := startIrssi(t, "alice")
	c.Type(fmt.Sprintf("/connect -tls -tls_cafile %s -rawlog %s 127.0.0.1 %d alicepw alice",
		filepath.Join(dir, "cert.pem"), c.rawLog(), s.TLSPort))
	bob.Expect(`:alice!\S+ JOIN #lobby`, irssiWait)
	c.waitJoined(2)
	c.Type("/msg bob over tls")
	bob.Expect(`:alice!\S+ PRIVMSG bob :over tls$`, irssiWait)
	bob.Send("PRIVMSG alice :plaintext reply")
	c.wait("reply over TLS", `plaintext reply`, c.everyLog()...)
}
