package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/lobbychat/ircd/web"
)

// listenWeb opens the [web] listeners and serves the page and IRC over
// WebSocket on them (wss with the [tls] certificate, which SIGHUP
// reloads), or opens none.
func (d *daemon) listenWeb(serveErr chan<- error) ([]net.Listener, error) {
	cfg := d.cfg.Web
	if len(cfg.Listen)+len(cfg.TLSListen) == 0 {
		return nil, nil
	}
	var proxies []*net.IPNet
	for _, p := range cfg.TrustedProxies {
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fmt.Errorf("web.trusted_proxies: %w", err)
		}
		proxies = append(proxies, n)
	}
	var opened []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, l := range opened {
			l.Close()
		}
		return nil, err
	}
	serve := func(addr string, secure bool) error {
		h, err := web.New(d.srv, web.Config{AllowedOrigins: cfg.AllowedOrigins, TrustedProxies: proxies, TLS: secure, Logger: d.log})
		if err != nil {
			return err
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen (web) %s: %w", addr, err)
		}
		opened = append(opened, l)
		d.log.Info("web listening", "addr", l.Addr().String(), "tls", secure)
		if secure {
			l = tls.NewListener(l, d.certs.tlsConfig())
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: nil}
		go func() { serveErr <- hs.Serve(l) }()
		return nil
	}
	for _, a := range cfg.Listen {
		if err := serve(a, false); err != nil {
			return fail(err)
		}
	}
	for _, a := range cfg.TLSListen {
		if err := serve(a, true); err != nil {
			return fail(err)
		}
	}
	return opened, nil
}
