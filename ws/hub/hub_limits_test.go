package hub

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// Left is called once per client: when its connection ends, and when its
// upgrade fails.
func TestLeft(t *testing.T) {
	h := NewHub(Config{}, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { h.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()
	var left atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Serve(w, r, Subscription{Left: func() { left.Add(1) }})
	}))
	defer srv.Close()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the client", func() bool { return h.Clients() == 1 })
	if n := left.Load(); n != 0 {
		t.Fatalf("Left called %d times while connected", n)
	}
	conn.Close()
	waitFor(t, "Left after the close", func() bool { return left.Load() == 1 })
	resp, err := http.Get(srv.URL) // not a WebSocket: the upgrade fails
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, "Left after a failed upgrade", func() bool { return left.Load() == 2 })
	time.Sleep(50 * time.Millisecond)
	if n := left.Load(); n != 2 {
		t.Errorf("Left called %d times for 2 clients", n)
	}
}

// A protocol ping during a replay stalled by a slow link (here a client
// that stops reading for longer than gorilla's one-second pong deadline)
// does not cut the replay: the pong is written by the write pump, and
// the replay's own deadline is WriteWait.
func TestPingDuringStalledReplay(t *testing.T) {
	const n = 20000
	e := newTestEnv(t, Config{}, func(l net.Listener) net.Listener { return smallBufListener{l} })
	pad := strings.Repeat("x", 1000)
	for range n {
		e.publishBody("r", `{"type":"epoch_metrics","pad":"`+pad+`"`, false)
	}
	e.sync()
	conn := e.dial("?run=r")
	time.Sleep(300 * time.Millisecond) // the server's replay fills the socket and blocks
	if err := conn.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the blocked write outlives a one-second pong deadline
	pong := make(chan struct{}, 1)
	conn.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	conn.SetReadDeadline(time.Now().Add(testWait))
	for want := uint64(1); want <= n; want++ {
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("replay cut after %d of %d frames: %v", want-1, n, err)
		}
		if got := seqOf(data); got != want {
			t.Fatalf("frame seq %d, want %d", got, want)
		}
	}
	select {
	case <-pong:
	default:
		t.Error("no pong for the ping")
	}
}

// A stream's history is bounded by StreamBytes: past it the oldest
// messages go, and a client joining later is told what it missed, then
// gets what is kept; the hub's total stays within budget.
func TestStreamBytes(t *testing.T) {
	e := newTestEnv(t, Config{StreamBytes: 5000, TotalBytes: 8000}, nil)
	pad := strings.Repeat("x", 450)
	for range 20 {
		e.publishBody("r", `{"type":"epoch_metrics","pad":"`+pad+`"`, false)
	}
	for range 20 {
		e.publishBody("s", `{"type":"epoch_metrics","pad":"`+pad+`"`, false)
	}
	e.sync()
	c := e.dial("?run=r")
	gap := read(t, c)
	if gap.Type != "replay_gap" || gap.MissedFrom != 1 || gap.MissedTo < 10 {
		t.Fatalf("first frame %+v, want a replay_gap from 1", gap)
	}
	for want := gap.MissedTo + 1; want <= 20; want++ {
		expect(t, c, f("r", want))
	}
	var total int64
	reply := make(chan int64, 1)
	e.hub.do(func() { reply <- e.hub.totalBytes })
	total = <-reply
	if total > 8000 {
		t.Errorf("the hub holds %d bytes of history, budget 8000", total)
	}
}

// A malformed client frame (unmasked, a reserved bit or opcode, a control
// frame over 125 bytes or fragmented, a continuation with nothing to
// continue) gets a close frame 1002, and the hub keeps no client.
func TestMalformedFrames(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	for name, tc := range map[string]struct {
		in   []byte
		code int
	}{
		"unmasked":          {[]byte{0x81, 0x04, 'p', 'i', 'n', 'g'}, 1002},
		"reserved bit":      {[]byte{0xc1, 0x80, 0, 0, 0, 0}, 1002},
		"reserved opcode":   {clientFrame(true, 3, []byte("x")), 1002},
		"long control":      {clientFrame(true, 9, make([]byte, 200)), 1002},
		"fragmented ping":   {clientFrame(false, 9, []byte("p")), 1002},
		"continuation only": {clientFrame(true, 0, []byte("x")), 1002},
	} {
		conn, err := net.DialTimeout("tcp", addr, testWait)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(testWait))
		if err := handshake(conn, addr); err != nil {
			t.Fatal(err)
		}
		conn.Write(tc.in)
		br := bufio.NewReader(conn)
		code := 0
		for {
			op, p, err := readRawFrame(br, nil)
			if err != nil {
				break
			}
			if op == 8 && len(p) >= 2 {
				code = int(p[0])<<8 | int(p[1])
				break
			}
		}
		conn.Close()
		if code != tc.code {
			t.Errorf("%s: close %d, want %d", name, code, tc.code)
		}
	}
	waitFor(t, "no client left", func() bool { return e.hub.Clients() == 0 })
}
