package ws

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// What a browser may do. With no token (the default) the server must not be
// driven by the pages its user visits: a foreign page (another origin), a
// page whose name an attacker points at this machine (DNS rebinding) and a
// sandboxed frame (Origin "null"). Programs (the seed's Python, Qt and
// wscat clients, curl) send no Origin and are never refused here; only the
// token stops them.
//
//   - Host. The Host header must be a loopback name (localhost,
//     *.localhost), an IP address, or one of Config.AllowedHosts. A rebound
//     page sends its own name: refused (403) before anything runs, the
//     dashboard's files included. An IP address cannot be rebound.
//   - Origin. A request carrying one must come from this server's own
//     origin (the dashboard), a page on a loopback name or address (the
//     seed's browser client run from a local page or the dashboard's
//     console), or one of Config.AllowedOrigins; else 403, with no CORS
//     header, for every endpoint and for the WebSocket handshake alike.
//   - Fetch metadata. A cross-site request without Origin (an image or a
//     script tag of a foreign page) is refused, but for a navigation (a
//     link to the dashboard).
//   - CORS. An Origin listed in AllowedOrigins other than this server's
//     own gets CORS headers and its preflights are answered; no other does.
//   - Bodies. POST /api/runs takes application/json only (415), so that a
//     foreign page cannot send one as a "simple" request without a
//     preflight.

// guard applies the Host, Origin and fetch-metadata rules to every request
// and answers the CORS preflights of allowed origins.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.hostAllowed(r.Host) {
			s.refuse("host")
			writeError(w, http.StatusForbidden, fmt.Sprintf("Host %q is not allowed: this server answers to localhost, IP addresses and the names given with --allowed-hosts "+
				"(a check against DNS rebinding); add it with --allowed-hosts %s", r.Host, hostName(r.Host)))
			return
		}
		origin := r.Header.Get("Origin")
		if origin == "" {
			if r.Header.Get("Sec-Fetch-Site") == "cross-site" && r.Header.Get("Sec-Fetch-Mode") != "navigate" {
				s.refuse("cross_site")
				writeError(w, http.StatusForbidden, "cross-site request refused: a page of another site may not use this server")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		ok, cors := s.cfg.originAllowed(origin, r)
		if !ok {
			s.refuse("origin")
			writeError(w, http.StatusForbidden, fmt.Sprintf("Origin %q is not allowed: pages of this server and of localhost are; add others with --allowed-origins", origin))
			return
		}
		if cors {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "Location, ETag, X-Dataset-Hash")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// jsonOnly refuses a request whose body is not declared application/json
// (415): text/plain, forms and a body without a type are what a page may
// send to another origin without a preflight.
func (s *Server) jsonOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			s.refuse("content_type")
			writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send the run request as JSON with Content-Type: application/json", r.Header.Get("Content-Type")))
			return
		}
		h(w, r)
	}
}

// hostName is the name of a Host header, without port, lower case, with
// no trailing dot; IPv6 brackets removed.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	return strings.ToLower(host)
}

// loopbackName reports whether name (from hostName) is a loopback name or
// address: localhost and its subdomains never leave the machine (RFC 6761;
// browsers resolve them themselves).
func loopbackName(name string) bool {
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

// hostAllowed reports whether a request's Host header passes the DNS
// rebinding check: a loopback name, an IP address, a name of AllowedHosts
// (".example.com" allows its subdomains), anything when AllowedHosts holds
// "*". An empty Host (HTTP/1.0) comes from no browser.
func (c Config) hostAllowed(host string) bool {
	name := hostName(host)
	if name == "" || loopbackName(name) || net.ParseIP(name) != nil {
		return true
	}
	for _, a := range c.AllowedHosts {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case a == "*", a == name, hostName(a) == name:
			return true
		case strings.HasPrefix(a, ".") && strings.HasSuffix(name, a):
			return true
		}
	}
	return false
}

// originAllowed reports whether a request carrying origin may proceed, and
// whether it gets CORS headers (an allowed origin other than the server's
// own, or a loopback page's).
func (c Config) originAllowed(origin string, r *http.Request) (ok, cors bool) {
	for _, a := range c.AllowedOrigins {
		a = strings.TrimSpace(a)
		if a == "*" || strings.EqualFold(a, origin) {
			return true, !sameOrigin(origin, r)
		}
	}
	if origin == "null" {
		return false, false // a sandboxed frame or a file: page, of anyone
	}
	if sameOrigin(origin, r) {
		return true, false
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false, false
	}
	return loopbackName(hostName(u.Host)), false
}

// sameOrigin reports whether origin names the host and port r was sent to.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return hostPort(u.Host, u.Scheme == "https") == hostPort(r.Host, r.TLS != nil)
}

// hostPort is host with its port, the scheme's default when absent.
func hostPort(host string, tls bool) string {
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		h, p = host, "80"
		if tls {
			p = "443"
		}
	}
	return strings.ToLower(strings.Trim(h, "[]")) + ":" + p
}
