//go:build linux

package main

// An in-test load balancer in front of serve replicas: what a deployment
// puts before them. It passes WebSocket upgrades through (httputil's
// ReverseProxy does since Go 1.12), picks replicas in turn, and moves on to
// the next one when a replica refuses the connection (it is dead), as
// nginx's proxy_next_upstream does. Every answer says which replica gave it
// (X-Kairo-Replica), so a test knows where a client landed.

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"sync"
	"syscall"
	"testing"
)

// replicaHeader names the replica that answered, on every response.
const replicaHeader = "X-Kairo-Replica"

// balancer is a round-robin reverse proxy over named replicas.
type balancer struct {
	*httptest.Server
	mu       sync.Mutex
	names    []string
	addrs    map[string]string // name → host:port
	next     int
	failover int // requests moved to another replica because one refused
}

// startBalancer starts a balancer on loopback in front of replicas (name →
// host:port), trying them in the order of names.
func startBalancer(t *testing.T, names []string, addrs map[string]string) *balancer {
	t.Helper()
	b := &balancer{names: names, addrs: addrs}
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", "balancer" },
		Transport: b,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set(replicaHeader, resp.Request.Header.Get(replicaHeader))
			return nil
		},
	}
	b.Server = httptest.NewServer(proxy)
	t.Cleanup(b.Close)
	return b
}

// Addr is the balancer's host:port.
func (b *balancer) Addr() string { return b.Listener.Addr().String() }

// setAddr points replica name at a new address (it restarted elsewhere).
func (b *balancer) setAddr(name, addr string) {
	b.mu.Lock()
	b.addrs[name] = addr
	b.mu.Unlock()
}

// failovers counts the requests moved to another replica so far.
func (b *balancer) failovers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failover
}

// RoundTrip sends the request to the next replica in turn, and to the
// following ones while they refuse the connection. Only a refused dial
// moves on: the request was never sent, so sending it again is safe.
func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	start := b.next
	b.next = (b.next + 1) % len(b.names)
	b.mu.Unlock()
	var err error
	for i := range b.names {
		b.mu.Lock()
		name := b.names[(start+i)%len(b.names)]
		addr := b.addrs[name]
		b.mu.Unlock()
		out := req.Clone(req.Context())
		out.URL.Host = addr
		out.Header.Set(replicaHeader, name)
		var resp *http.Response
		resp, err = http.DefaultTransport.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		if !refused(err) {
			return nil, err
		}
		b.mu.Lock()
		b.failover++
		b.mu.Unlock()
	}
	return nil, err
}

// refused reports a dial that nothing answered.
func refused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &op) && op.Op == "dial"
}
