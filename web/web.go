// Package web serves the browser chat client and IRC over WebSocket
// (IRCv3's WebSocket binding) from one HTTP listener: the page at "/",
// the IRC connection at "/irc" (or "/" with an Upgrade). A WebSocket
// connection becomes an ordinary connection of the server: the same line
// reader, command table, limits and send queue as TCP.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/lobbychat/ircd/ircd"
)

//go:embed static
var static embed.FS

// Config is the [web] section, parsed.
type Config struct {
	// AllowedOrigins are origins (host patterns, as the browser sends
	// them in Origin: "chat.example.com", "*.example.com") allowed to open
	// the WebSocket besides the page's own host.
	AllowedOrigins []string
	// TrustedProxies are the addresses of reverse proxies whose
	// X-Forwarded-For is believed; the client's address is the first one
	// from the right that is not a trusted proxy.
	TrustedProxies []*net.IPNet
	TLS            bool // the listener is HTTPS: send HSTS
	Logger         *slog.Logger
}

// Handler serves the page and the WebSocket for one server.
type Handler struct {
	srv   *ircd.Server
	cfg   Config
	files map[string]file
}

type file struct {
	body  []byte
	ctype string
	etag  string
}

// New returns the handler, with the embedded page read once (its ETags
// are content hashes).
func New(srv *ircd.Server, cfg Config) (*Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{srv: srv, cfg: cfg, files: make(map[string]file)}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		h.files[strings.TrimPrefix(p, "static")] = file{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	return h, err
}

// csp allows the page's own scripts, styles and WebSocket only.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/irc" || r.URL.Path == "/" && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		h.serveIRC(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := r.URL.Path
	if name == "/" {
		name = "/index.html"
	}
	f, ok := h.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	if h.cfg.TLS {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	hd.Set("Content-Type", f.ctype)
	hd.Set("ETag", f.etag)
	hd.Set("Cache-Control", "no-cache") // revalidate: a new version shows at once
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(f.body)
}

// IRCv3 WebSocket subprotocols: binary carries bytes as sent, text is
// UTF-8 (invalid sequences replaced).
const (
	protoBinary = "binary.ircv3.net"
	protoText   = "text.ircv3.net"
)

// pickSubprotocol honours the client's order of preference (the
// library's own choice follows the server's), "" if it offered none we
// speak.
func pickSubprotocol(r *http.Request) string {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			switch p = strings.TrimSpace(p); {
			case strings.EqualFold(p, protoBinary):
				return protoBinary
			case strings.EqualFold(p, protoText):
				return protoText
			}
		}
	}
	return ""
}

// readLimit fits the longest line the server reads: 8191 bytes of tags
// and 512 of message.
const readLimit = 8191 + 512

func (h *Handler) serveIRC(w http.ResponseWriter, r *http.Request) {
	proto := pickSubprotocol(r)
	opts := &websocket.AcceptOptions{OriginPatterns: h.cfg.AllowedOrigins}
	if proto != "" {
		opts.Subprotocols = []string{proto}
	}
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		h.cfg.Logger.Debug("WebSocket refused", "addr", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return // Accept answered (403 for a foreign origin)
	}
	c.SetReadLimit(readLimit)
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	// No subprotocol: text, which is what a browser's WebSocket shows.
	h.srv.ServeConn(newConn(c, proto != protoBinary, clientAddr(r, h.cfg.TrustedProxies), local))
}

// clientAddr is who is at the other end: the peer, or, when the peer is a
// trusted proxy, the first address in X-Forwarded-For, from the right,
// that is not one. Per-address limits and the login throttle then apply
// to the user, not to the proxy.
func clientAddr(r *http.Request, trusted []*net.IPNet) net.Addr {
	host, port, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host, port = r.RemoteAddr, "0"
	}
	ip := net.ParseIP(host)
	isTrusted := func(ip net.IP) bool {
		for _, n := range trusted {
			if n.Contains(ip) {
				return true
			}
		}
		return false
	}
	if ip != nil && isTrusted(ip) {
		var hops []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			hops = append(hops, strings.Split(v, ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			hop := net.ParseIP(strings.TrimSpace(hops[i]))
			if hop == nil {
				break // a malformed hop: trust nothing before it
			}
			ip = hop
			if !isTrusted(hop) {
				break
			}
		}
	}
	p := 0
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	return &net.TCPAddr{IP: ip, Port: p}
}

// pingEvery is how often an idle WebSocket is pinged: proxies drop
// connections quiet for 60 s. Jittered so pings do not come in waves.
func pingEvery() time.Duration {
	return 30*time.Second + time.Duration(time.Now().UnixNano()%int64(15*time.Second))
}
