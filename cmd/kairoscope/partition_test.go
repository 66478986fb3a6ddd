//go:build linux

package main

// A network partition between one agent and NATS, made by an in-test TCP
// proxy: the agent process and its worker run on, cut off.

import (
	"net"
	"sync"
	"testing"
	"time"
)

// link is a TCP proxy to the NATS server that a test can cut as a network
// partition would: while cut it forwards nothing either way and new
// connections hang, the bytes waiting as TCP's retransmissions would;
// healed, it forwards what waited and goes on.
type link struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	up     chan struct{} // closed while the link forwards
}

func startLink(t *testing.T, target string) *link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &link{ln: ln, target: target, up: make(chan struct{})}
	close(l.up)
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			open = append(open, in, out)
			mu.Unlock()
			conns.Go(func() { l.pipe(out, in) })
			conns.Go(func() { l.pipe(in, out) })
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		l.heal()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	return l
}

// URL is the NATS URL an agent behind the link connects to.
func (l *link) URL() string { return "nats://" + l.ln.Addr().String() }

// pipe copies src to dst, holding each read while the link is cut.
func (l *link) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			l.mu.Lock()
			up := l.up
			l.mu.Unlock()
			<-up
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (l *link) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.up:
		l.up = make(chan struct{})
	default:
	}
}

func (l *link) heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.up:
	default:
		close(l.up)
	}
}

// testAgentPartitioned cuts the agent running a run off from NATS, past
// its lease: the agent stops its worker while cut off, the run goes on
// elsewhere as attempt 2, and once the partition heals, what the old
// agent had in flight is refused, it acknowledges nothing and stores
// nothing more.
func testAgentPartitioned(t *testing.T, natsBin string) {
	c := startCluster(t, natsBin, clusterSpec{lease: faultLease, maxRetries: 2,
		agents: []agentSpec{{name: "a", partitioned: true}, {name: "b", partitioned: true}}})
	addr := c.addr(-1)
	id, full, h, workers := c.startRun(t, runLonger)
	cut := time.Now()
	c.links[h.name].cut()
	gone := c.watch.waitGone(t, workers, cut, stopWait)
	h.waitLogged(t, stopWait, "agent: stopped the worker of a run it no longer holds", func(e logEntry) bool { return e.str("run_id") == id })
	second := full.waitFor(t, id, attemptWait, "a message of attempt 2", ofAttempt(2))
	full.waitFor(t, id, firstEpochWait, "an epoch of attempt 2", isEpoch(2))
	healed := time.Now()
	c.links[h.name].heal()
	time.Sleep(faultLease) // the old agent reconnects and finds itself fenced
	checkLeftBehind(t, c, addr, full, id, h, healed, "the partition healed")
	t.Logf("figures: cut → the worker gone %v; cut → attempt 2's first message %s",
		gone.Round(time.Millisecond), secs(cut, second.at))
}
