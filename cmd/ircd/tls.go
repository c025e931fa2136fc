package main

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// certStore holds the current certificate; SIGHUP swaps it, and every
// new handshake picks it up, so reloading drops no connection.
type certStore struct {
	cert atomic.Pointer[tls.Certificate]
}

func (cs *certStore) load(certFile, keyFile string) error {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("tls: loading %s and %s: %w", certFile, keyFile, err)
	}
	cs.cert.Store(&c)
	return nil
}

func (cs *certStore) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cs.cert.Load(), nil
		},
	}
}
