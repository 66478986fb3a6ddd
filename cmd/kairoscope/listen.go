package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
)

// defaultAddr is where serve listens without --addr: both loopback
// addresses, so that ws://localhost:8000 reaches it whichever one a client
// resolves localhost to, and nothing beyond this machine.
const defaultAddr = "localhost:8000"

// listen opens the listeners of addr. "localhost:PORT" listens on
// 127.0.0.1 and, where the machine has IPv6, on [::1] at the same port;
// any other address is listened on as net.Listen does ("0.0.0.0:8000":
// every interface). With tlsCfg every listener speaks TLS.
func listen(addr string, tlsCfg *tls.Config) ([]net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: %w", addr, err)
	}
	var lns []net.Listener
	if strings.EqualFold(host, "localhost") {
		ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		lns = append(lns, ln)
		_, port, _ = net.SplitHostPort(ln.Addr().String()) // the one chosen for port 0
		if ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", port)); err == nil {
			lns = append(lns, ln6)
		} // no IPv6 loopback: 127.0.0.1 alone
	} else {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		lns = append(lns, ln)
	}
	if tlsCfg != nil {
		for i, ln := range lns {
			lns[i] = tls.NewListener(ln, tlsCfg)
		}
	}
	return lns, nil
}

// loadTLS reads --tls-cert and --tls-key: both or neither.
func loadTLS(cert, key string) (*tls.Config, error) {
	switch {
	case cert == "" && key == "":
		return nil, nil
	case cert == "" || key == "":
		return nil, usageError{errors.New("--tls-cert and --tls-key go together: a PEM certificate (chain) and its private key")}
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", cert, key, err)
	}
	// HTTP/1.1 only: WebSockets upgrade an HTTP/1.1 connection.
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}, nil
}

// allLoopback reports whether every listener is on a loopback address.
func allLoopback(lns []net.Listener) bool {
	for _, ln := range lns {
		if !loopback(ln.Addr()) {
			return false
		}
	}
	return true
}

// redactURLs masks the user and password of every URL in a comma-separated
// list (nats://TOKEN@host:4222), for logs.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		scheme, rest, ok := strings.Cut(p, "://")
		if at := strings.LastIndex(rest, "@"); ok && at >= 0 {
			parts[i] = scheme + "://REDACTED@" + rest[at+1:]
		}
	}
	return strings.Join(parts, ",")
}
