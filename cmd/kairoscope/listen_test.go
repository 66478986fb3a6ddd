package main

import (
	"net"
	"strings"
	"testing"
)

// "localhost:PORT" listens on both loopback addresses at one port, and
// only there.
func TestListenLocalhost(t *testing.T) {
	lns, err := listen("localhost:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	if !allLoopback(lns) {
		t.Errorf("listeners %v beyond loopback", lns)
	}
	_, port, _ := net.SplitHostPort(lns[0].Addr().String())
	for _, host := range []string{"127.0.0.1", "::1"} {
		if host == "::1" && len(lns) < 2 {
			t.Log("no IPv6 loopback here")
			continue
		}
		c, err := net.Dial("tcp", net.JoinHostPort(host, port))
		if err != nil {
			t.Errorf("dialing %s: %v", host, err)
			continue
		}
		c.Close()
	}
	if defaultAddr != "localhost:8000" {
		t.Errorf("default address %q", defaultAddr)
	}
	all, err := listen("0.0.0.0:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer all[0].Close()
	if allLoopback(all) {
		t.Error("0.0.0.0 counted as loopback")
	}
}

func TestRedactURLs(t *testing.T) {
	in := "nats://s3cret@nats-0.nats:4222,nats://user:pw@h:4222,nats://plain:4222"
	got := redactURLs(in)
	if strings.Contains(got, "s3cret") || strings.Contains(got, "pw") || !strings.Contains(got, "nats://plain:4222") || !strings.Contains(got, "@nats-0.nats:4222") {
		t.Errorf("redactURLs(%q) = %q", in, got)
	}
}
