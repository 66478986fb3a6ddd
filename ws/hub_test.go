package ws

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// hubTestWait bounds every wait in these tests: a stuck hub fails the test
// instead of hanging it.
const hubTestWait = 10 * time.Second

// hubTestEnv is a running hub behind an httptest server. Its cleanup stops
// the hub, checks that Run returned, and then that no goroutine leaked.
type hubTestEnv struct {
	t      testing.TB
	hub    *Hub
	srv    *httptest.Server
	url    string // ws://host/ws
	cancel context.CancelFunc
	ran    chan struct{} // closed when Run has returned

	watcher *websocket.Conn // see sync
	syncs   int
}

// newHubTestEnv starts a hub with cfg. wrap, if not nil, wraps the
// server's listener.
func newHubTestEnv(t testing.TB, cfg Config, wrap func(net.Listener) net.Listener) *hubTestEnv {
	t.Helper()
	hubTestCheckGoroutines(t)
	e := &hubTestEnv{t: t, hub: NewHub(cfg, zerolog.Nop()), ran: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() {
		e.hub.Run(ctx)
		close(e.ran)
	}()
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(e.hub.ServeWS))
	if wrap != nil {
		e.srv.Listener = wrap(e.srv.Listener)
	}
	e.srv.Start()
	e.url = "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws"
	t.Cleanup(func() {
		e.stop()
		e.srv.Close()
	})
	return e
}

// stop cancels Run and waits for it to return.
func (e *hubTestEnv) stop() {
	e.t.Helper()
	e.cancel()
	select {
	case <-e.ran:
	case <-time.After(hubTestWait):
		e.t.Fatal("Run did not return after its context was cancelled")
	}
}

// dial opens a client with query (e.g. "?run=a"); the test's cleanup closes
// it.
func (e *hubTestEnv) dial(query string) *websocket.Conn {
	e.t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(e.url+query, nil)
	if err != nil {
		e.t.Fatalf("dial %s: %v", query, err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

// sync returns once Run has applied every Publish, Forget and CloseRun
// called before it: it publishes to a run of its own, through the same
// ordered inbox, and waits for a watcher client to get that message. The
// watcher counts in Clients.
func (e *hubTestEnv) sync() {
	e.t.Helper()
	if e.watcher == nil {
		e.watcher = e.dial("?run=" + hubTestSyncRun)
	}
	e.syncs++
	e.hub.Publish(hubTestSyncRun, hubTestMsg(e.syncs))
	for {
		if f := hubTestRead(e.t, e.watcher); f.Seq == uint64(e.syncs) {
			return
		}
	}
}

const hubTestSyncRun = "_sync"

// hubTestCheckGoroutines fails t if, at its cleanup, more goroutines run
// than at the call, after a short grace for goroutines that are ending.
func hubTestCheckGoroutines(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines leaked: %d running, %d before\n%s",
					runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// hubTestWaitFor polls cond until it holds, failing t after hubTestWait.
func hubTestWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hubTestWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// hubTestFrame is the part of a published test message the tests check.
type hubTestFrame struct {
	Type  string `json:"type"`
	RunID string `json:"run_id"`
	Seq   uint64 `json:"seq"`
	N     int    `json:"n"`
}

func hubTestMsg(n int) []byte {
	return fmt.Appendf(nil, `{"type":"epoch_metrics","n":%d}`, n)
}

// hubTestRead reads one frame, which must be one JSON object.
func hubTestRead(t testing.TB, conn *websocket.Conn) hubTestFrame {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(hubTestWait))
	typ, data, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f hubTestFrame
	if typ != websocket.TextMessage || json.Unmarshal(data, &f) != nil {
		t.Fatalf("frame is not a JSON object in a text message: type %d %q", typ, data)
	}
	return f
}

// hubTestExpect reads len(want) frames and checks their run and seq.
func hubTestExpect(t testing.TB, conn *websocket.Conn, want ...hubTestFrame) {
	t.Helper()
	for i, w := range want {
		if f := hubTestRead(t, conn); f.RunID != w.RunID || f.Seq != w.Seq {
			t.Fatalf("frame %d = %s/%d, want %s/%d", i, f.RunID, f.Seq, w.RunID, w.Seq)
		}
	}
}

// hubTestExpectClose reads until the close frame and checks its code and
// reason.
func hubTestExpectClose(t testing.TB, conn *websocket.Conn, code int, reason string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(hubTestWait))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("read ended with %v, want close %d", err, code)
		}
		if ce.Code != code || ce.Text != reason {
			t.Fatalf("closed with %d %q, want %d %q", ce.Code, ce.Text, code, reason)
		}
		return
	}
}

// TestHubPublishOrder: every run numbers its messages 1, 2, 3, … on its own,
// clients get them in order, and the envelope keeps every original field.
func TestHubPublishOrder(t *testing.T) {
	e := newHubTestEnv(t, Config{}, nil)
	all, onlyA := e.dial(""), e.dial("?run=a")
	hubTestWaitFor(t, "2 clients", func() bool { return e.hub.Clients() == 2 })

	const n = 20
	for i := 1; i <= n; i++ {
		e.hub.Publish("a", fmt.Appendf(nil, `{"type":"epoch_metrics","n":%d,"nested":{"s":"} {","l":[1,{}]}}`, i))
		e.hub.Publish("b", hubTestMsg(i))
	}
	for i := 1; i <= n; i++ {
		hubTestExpect(t, all, hubTestFrame{RunID: "a", Seq: uint64(i)}, hubTestFrame{RunID: "b", Seq: uint64(i)})
		onlyA.SetReadDeadline(time.Now().Add(hubTestWait))
		_, data, err := onlyA.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("frame %q: %v", data, err)
		}
		want := map[string]any{"type": "epoch_metrics", "n": float64(i), "run_id": "a", "seq": float64(i),
			"nested": map[string]any{"s": "} {", "l": []any{float64(1), map[string]any{}}}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("frame %d = %v, want %v", i, got, want)
		}
	}
}

// TestHubPublishDropsNonObjects: a message that is not a JSON object is
// never sent (the seed's client JSON.parses every frame) and takes no seq.
func TestHubPublishDropsNonObjects(t *testing.T) {
	e := newHubTestEnv(t, Config{}, nil)
	conn := e.dial("?run=a")
	for _, bad := range []string{"", "ping", "[1]", `"s"`, `{"a":`, `{"a":1}{"b":2}`} {
		e.hub.Publish("a", []byte(bad))
	}
	msg := hubTestMsg(1)
	e.hub.Publish("a", msg)
	msg[0] = 'X' // Publish copied it
	hubTestExpect(t, conn, hubTestFrame{RunID: "a", Seq: 1})
}

// TestHubOnPublish: the hook sees every delivered message with its run, its
// seq and the time Publish was called, before any client gets it; a dropped
// message takes no seq and never reaches it.
func TestHubOnPublish(t *testing.T) {
	type call struct {
		run string
		seq uint64
		at  time.Time
	}
	calls := make(chan call, 8)
	e := newHubTestEnv(t, Config{OnPublish: func(runID string, seq uint64, at time.Time) {
		calls <- call{runID, seq, at}
	}}, nil)
	conn := e.dial("?run=a")
	hubTestWaitFor(t, "the client", func() bool { return e.hub.Clients() == 1 })
	before := time.Now()
	e.hub.Publish("a", hubTestMsg(1))
	e.hub.Publish("a", []byte("not json"))
	e.hub.Publish("b", hubTestMsg(1))
	e.hub.Publish("a", hubTestMsg(2))
	after := time.Now()
	hubTestExpect(t, conn, hubTestFrame{RunID: "a", Seq: 1}, hubTestFrame{RunID: "a", Seq: 2})
	for _, want := range []call{{run: "a", seq: 1}, {run: "b", seq: 1}, {run: "a", seq: 2}} {
		select {
		case got := <-calls:
			if got.run != want.run || got.seq != want.seq || got.at.Before(before) || got.at.After(after) {
				t.Errorf("OnPublish(%q, %d, %v); want (%q, %d, a time between %v and %v)", got.run, got.seq, got.at, want.run, want.seq, before, after)
			}
		case <-time.After(hubTestWait):
			t.Fatalf("no OnPublish call for %q seq %d", want.run, want.seq)
		}
	}
	select {
	case got := <-calls:
		t.Errorf("an extra OnPublish call: %+v", got)
	default:
	}
}

// TestHubMidRunJoin: a client joining while messages are being published
// gets the history and then the live messages, each exactly once, in order.
func TestHubMidRunJoin(t *testing.T) {
	e := newHubTestEnv(t, Config{}, nil)
	for i := 1; i <= 50; i++ {
		e.hub.Publish("r", hubTestMsg(i))
	}
	const joiners = 8
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 51; i <= 100; i++ {
			e.hub.Publish("r", hubTestMsg(i))
			if i%8 == 0 {
				runtime.Gosched()
			}
		}
	})
	conns := make([]*websocket.Conn, joiners)
	for j := range conns {
		conns[j] = e.dial("?run=r") // joins somewhere during the second half
	}
	wg.Wait()
	e.hub.Publish("r", hubTestMsg(101)) // after 100, nothing but 101 may come
	for j, conn := range conns {
		for want := uint64(1); want <= 101; want++ {
			if f := hubTestRead(t, conn); f.Seq != want || f.N != int(want) {
				t.Fatalf("joiner %d: got seq %d (n %d), want %d", j, f.Seq, f.N, want)
			}
		}
	}
}

// TestHubRunFilter: run=<id> gets that run alone; no parameter gets every
// run, the history ordered by each run's start, then seq.
func TestHubRunFilter(t *testing.T) {
	e := newHubTestEnv(t, Config{}, nil)
	e.hub.Publish("a", hubTestMsg(1))
	e.hub.Publish("b", hubTestMsg(1))
	e.hub.Publish("a", hubTestMsg(2))
	e.sync() // so the three are history for the clients below
	a, b, all, none := e.dial("?run=a"), e.dial("?run=b"), e.dial(""), e.dial("?run=nosuch")
	hubTestWaitFor(t, "5 clients", func() bool { return e.hub.Clients() == 5 }) // and the watcher
	e.hub.Publish("b", hubTestMsg(2))
	e.hub.Publish("a", hubTestMsg(3))
	e.hub.Publish("c", hubTestMsg(1))
	f := func(run string, seq uint64) hubTestFrame { return hubTestFrame{RunID: run, Seq: seq} }
	hubTestExpect(t, a, f("a", 1), f("a", 2), f("a", 3))
	hubTestExpect(t, b, f("b", 1), f("b", 2))
	hubTestExpect(t, all, f("a", 1), f("a", 2), f("b", 1), f(hubTestSyncRun, 1), f("b", 2), f("a", 3), f("c", 1))
	e.hub.Publish("nosuch", hubTestMsg(1)) // a run that starts after its client joined
	hubTestExpect(t, none, f("nosuch", 1))
	// The others got nothing more: the next frame each reads is this one.
	e.hub.Publish("a", hubTestMsg(4))
	e.hub.Publish("b", hubTestMsg(3))
	hubTestExpect(t, a, f("a", 4))
	hubTestExpect(t, b, f("b", 3))
	hubTestExpect(t, all, f("nosuch", 1), f("a", 4), f("b", 3))
}

// TestHubHistoryLimit: only the last History messages are replayed; the
// seq numbers show what was dropped.
func TestHubHistoryLimit(t *testing.T) {
	e := newHubTestEnv(t, Config{History: 10}, nil)
	for i := 1; i <= 25; i++ {
		e.hub.Publish("r", hubTestMsg(i))
	}
	e.sync()
	conn := e.dial("?run=r")
	hubTestWaitFor(t, "the joiner", func() bool { return e.hub.Clients() == 2 }) // and the watcher
	e.hub.Publish("r", hubTestMsg(26))
	for want := uint64(16); want <= 26; want++ {
		if f := hubTestRead(t, conn); f.Seq != want {
			t.Fatalf("got seq %d, want %d", f.Seq, want)
		}
	}
}

// TestHubLongReplay: history far longer than the send queue reaches a
// joining client whole, because replay bypasses the queue.
func TestHubLongReplay(t *testing.T) {
	const n = 100000
	e := newHubTestEnv(t, Config{SendQueue: 8}, nil)
	for i := 1; i <= n; i++ {
		e.hub.Publish("r", []byte(`{"type":"epoch_metrics"}`))
	}
	e.sync() // all of it is history, not live
	conn := e.dial("?run=r")
	// Joined before the next message pushes seq 1 out of the history.
	hubTestWaitFor(t, "the client", func() bool { return e.hub.Clients() == 2 }) // and the watcher
	e.hub.Publish("r", []byte(`{"type":"training_complete"}`))
	conn.SetReadDeadline(time.Now().Add(hubTestWait))
	for want := 1; want <= n+1; want++ {
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d frames: %v", want-1, n+1, err)
		}
		if suffix := fmt.Sprintf(`"seq":%d}`, want); !strings.HasSuffix(string(data), suffix) {
			t.Fatalf("frame %q, want seq %d", data, want)
		}
	}
}

// TestHubForget: a forgotten run's history is no longer replayed, and its
// clients stay connected.
func TestHubForget(t *testing.T) {
	e := newHubTestEnv(t, Config{}, nil)
	e.hub.Publish("a", hubTestMsg(1))
	e.hub.Publish("b", hubTestMsg(1))
	early := e.dial("?run=a")
	hubTestExpect(t, early, hubTestFrame{RunID: "a", Seq: 1})
	e.hub.Forget("a")
	e.sync()
	late, all := e.dial("?run=a"), e.dial("")
	hubTestWaitFor(t, "4 clients", func() bool { return e.hub.Clients() == 4 }) // and the watcher
	e.hub.Publish("a", hubTestMsg(2))                                           // a new history for "a"
	hubTestExpect(t, early, hubTestFrame{RunID: "a", Seq: 1})
	hubTestExpect(t, late, hubTestFrame{RunID: "a", Seq: 1})
	hubTestExpect(t, all, hubTestFrame{RunID: "b", Seq: 1}, hubTestFrame{RunID: hubTestSyncRun, Seq: 1},
		hubTestFrame{RunID: "a", Seq: 1})
}

// TestHubCloseRun: a closed run's clients get every message, then 1000; a
// late joiner gets the history and the same close; others stay.
func TestHubCloseRun(t *testing.T) {
	e := newHubTestEnv(t, Config{}, nil)
	early, all := e.dial("?run=f"), e.dial("")
	hubTestWaitFor(t, "2 clients", func() bool { return e.hub.Clients() == 2 })
	for i := 1; i <= 5; i++ {
		e.hub.Publish("f", hubTestMsg(i))
	}
	e.hub.CloseRun("f")
	late := e.dial("?run=f")
	for _, conn := range []*websocket.Conn{early, late} {
		for want := uint64(1); want <= 5; want++ {
			if f := hubTestRead(t, conn); f.Seq != want {
				t.Fatalf("got seq %d, want %d", f.Seq, want)
			}
		}
		hubTestExpectClose(t, conn, websocket.CloseNormalClosure, "run finished")
	}
	e.hub.Publish("g", hubTestMsg(1))
	for want := uint64(1); want <= 5; want++ {
		hubTestExpect(t, all, hubTestFrame{RunID: "f", Seq: want})
	}
	hubTestExpect(t, all, hubTestFrame{RunID: "g", Seq: 1})
	hubTestWaitFor(t, "1 client", func() bool { return e.hub.Clients() == 1 })
}

// TestHubShutdown: cancelling Run's context flushes what was published,
// closes every client with 1001, and ends every goroutine (checked by the
// environment's cleanup).
func TestHubShutdown(t *testing.T) {
	e := newHubTestEnv(t, Config{}, nil)
	conns := []*websocket.Conn{e.dial(""), e.dial("?run=a"), e.dial("?run=b")}
	hubTestWaitFor(t, "3 clients", func() bool { return e.hub.Clients() == 3 })
	e.hub.Publish("a", hubTestMsg(1))
	e.hub.Publish("b", hubTestMsg(1))
	start := time.Now()
	e.cancel()
	hubTestExpect(t, conns[0], hubTestFrame{RunID: "a", Seq: 1}, hubTestFrame{RunID: "b", Seq: 1})
	hubTestExpect(t, conns[1], hubTestFrame{RunID: "a", Seq: 1})
	hubTestExpect(t, conns[2], hubTestFrame{RunID: "b", Seq: 1})
	for _, conn := range conns {
		hubTestExpectClose(t, conn, websocket.CloseGoingAway, "server shutting down")
	}
	e.stop()
	// Every client answered the close frame, so Run did not have to wait
	// out hubCloseGrace and cut connections.
	if d := time.Since(start); d >= hubCloseGrace {
		t.Errorf("Run took %v to shut down", d)
	}
	if n := e.hub.Clients(); n != 0 {
		t.Errorf("Clients() = %d after Run returned", n)
	}
	// After Run: new clients are refused, calls return at once.
	_, resp, err := websocket.DefaultDialer.Dial(e.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after shutdown: %v, %v; want HTTP 503", err, resp)
	}
	e.hub.Publish("a", hubTestMsg(2))
	e.hub.Forget("a")
	e.hub.CloseRun("a")
}

// hubTestSmallBufListener gives accepted connections a small socket send
// buffer, so that a client that stops reading stalls the server's writes
// after a few messages, as a slow link would.
type hubTestSmallBufListener struct{ net.Listener }

func (l hubTestSmallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// TestHubStalledClient: a client that never reads is closed with
// CloseSlowClient while 20 others get all 2,000 messages, and Publish never
// waits for it.
func TestHubStalledClient(t *testing.T) {
	const (
		good   = 20
		total  = 2000
		queue  = 8
		window = queue // published between waits, so no reader has more than its queue holds
	)
	e := newHubTestEnv(t, Config{SendQueue: queue}, func(l net.Listener) net.Listener { return hubTestSmallBufListener{l} })

	dialer := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4 << 10)
		}
		return c, err
	}}
	stalled, _, err := dialer.Dial(e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stalled.Close() })

	var (
		received [good]atomic.Int64
		failure  atomic.Value
		readers  sync.WaitGroup
	)
	for i := range good {
		conn := e.dial("")
		readers.Go(func() {
			for want := uint64(1); want <= total; want++ {
				conn.SetReadDeadline(time.Now().Add(hubTestWait))
				_, data, err := conn.ReadMessage()
				if err == nil && hubTestSeq(data) != want {
					err = fmt.Errorf("got %.40q…, want seq %d", data, want)
				}
				if err != nil {
					failure.CompareAndSwap(nil, fmt.Errorf("client %d: %w", i, err))
					return
				}
				received[i].Add(1)
			}
		})
	}
	hubTestWaitFor(t, "all clients", func() bool { return e.hub.Clients() == good+1 })

	pad := strings.Repeat("x", 1000)
	var slowest time.Duration
	dropped := false
	for i := 1; i <= total; i++ {
		msg := fmt.Appendf(nil, `{"type":"epoch_metrics","n":%d,"pad":%q}`, i, pad)
		start := time.Now()
		e.hub.Publish("r", msg)
		slowest = max(slowest, time.Since(start))
		if i%window != 0 && i != total {
			continue
		}
		hubTestWaitFor(t, fmt.Sprintf("message %d at every reader", i), func() bool {
			if err := failure.Load(); err != nil {
				t.Fatal(err)
			}
			for j := range received {
				if received[j].Load() < int64(i) {
					return false
				}
			}
			return true
		})
		if !dropped && e.hub.Clients() == good {
			t.Logf("stalled client dropped after message %d", i)
			// Read it now, well within WriteWait, so that the server's
			// blocked write completes and the close frame can follow.
			hubTestExpectClose(t, stalled, CloseSlowClient, "slow client: send queue full")
			dropped = true
		}
	}
	readers.Wait()
	if !dropped {
		t.Fatalf("the stalled client was not dropped; %d clients", e.hub.Clients())
	}
	if n := e.hub.Clients(); n != good {
		t.Errorf("Clients() = %d, want %d", n, good)
	}
	// A Publish that waited on the stalled client would take WriteWait (10s).
	if slowest > 250*time.Millisecond {
		t.Errorf("slowest Publish took %v", slowest)
	}
	t.Logf("slowest Publish: %v", slowest)
}

// hubTestRawDial opens a WebSocket with a hand-written handshake: no
// goroutine and no buffer on the client side, so that the server's share of
// memory can be measured.
func hubTestRawDial(tb testing.TB, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	var resp []byte
	b := make([]byte, 1)
	for !strings.HasSuffix(string(resp), "\r\n\r\n") {
		if _, err := c.Read(b); err != nil {
			tb.Fatalf("handshake: %v", err)
		}
		resp = append(resp, b[0])
	}
	if !strings.HasPrefix(string(resp), "HTTP/1.1 101") {
		tb.Fatalf("handshake: %q", resp)
	}
	return c
}

// hubTestReadFrame reads one unfragmented server frame (servers never
// mask), returning its opcode and payload in buf's storage.
func hubTestReadFrame(br *bufio.Reader, buf []byte) (byte, []byte, error) {
	h0, err := br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	h1, err := br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n := int(h1 & 0x7f)
	if n >= 126 {
		ext := 2 + 6*(n-126) // length bytes: 2 for 126, 8 for 127
		n = 0
		for range ext {
			b, err := br.ReadByte()
			if err != nil {
				return 0, nil, err
			}
			n = n<<8 | int(b)
		}
	}
	buf = slices.Grow(buf[:0], n)[:n]
	_, err = io.ReadFull(br, buf)
	return h0 & 0x0f, buf, err
}

// hubTestSeq returns the seq at the end of an enveloped frame.
func hubTestSeq(frame []byte) uint64 {
	var seq uint64
	i := len(frame) - 2 // before '}'
	for ; i >= 0 && frame[i] >= '0' && frame[i] <= '9'; i-- {
	}
	for _, d := range frame[i+1 : len(frame)-1] {
		seq = seq*10 + uint64(d-'0')
	}
	return seq
}

// hubTestEpochMetrics is a seed epoch_metrics message, about 600 bytes.
var hubTestEpochMetrics = []byte(`{"type":"epoch_metrics","fold_id":0,"epoch":10,"train_loss":0.1234,"train_nll":0.0987,` +
	`"train_bce":0.0234,"train_brier":0.1345,"val_loss":0.2345,"val_nll":0.1987,"val_bce":0.0456,"val_brier":0.1567,` +
	`"val_auc":0.6789,"DirAcc":0.5678,"ECE":0.0456,"MZ_intercept":0.0012,"MZ_slope":0.9987,"MZ_F_p":0.3456,` +
	`"PIT_KS_p":0.4567,"conformal_coverage":0.9012,"conformal_width":0.1234,"elapsed_seconds":123.45}`)

// BenchmarkHubBroadcast publishes one seed epoch_metrics message at a time
// to N clients on loopback and waits until every client has it: ns/op is the
// time to reach all N; p50-ms and p99-ms are over every single delivery
// (publish to the client's read of the whole frame). It also reports the
// memory per connection (heap and stacks after GC: the server's share plus
// the client's bare socket), idle-B/conn before any message and used-B/conn
// after the broadcast, with the clients' readers gone.
func BenchmarkHubBroadcast(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { hubBenchBroadcast(b, n) })
	}
}

func hubBenchBroadcast(b *testing.B, n int) {
	// History 1: the clients are there from the start, and used-B/conn
	// should not count the history.
	e := newHubTestEnv(b, Config{History: 1}, nil)
	addr := strings.TrimPrefix(e.srv.URL, "http://")

	before := hubBenchLiveBytes()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = hubTestRawDial(b, addr)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	hubTestWaitFor(b, "all clients", func() bool { return e.hub.Clients() == n })
	idle := float64(hubBenchLiveBytes()-before) / float64(n)

	var (
		sentAt    atomic.Int64 // UnixNano of the message in flight
		delivered = make(chan struct{}, n)
		latencies = make([][]time.Duration, n)
		gaps      atomic.Int64 // frames whose seq is not the previous one's + 1
		stopping  atomic.Bool  // the next frame is the last
		readers   sync.WaitGroup
	)
	for i, c := range conns {
		readers.Go(func() {
			br := bufio.NewReaderSize(c, 2048)
			var buf []byte
			var seq uint64
			for {
				op, frame, err := hubTestReadFrame(br, buf)
				if err != nil {
					return
				}
				buf = frame
				if op != websocket.TextMessage {
					continue
				}
				if stopping.Load() {
					return
				}
				latencies[i] = append(latencies[i], time.Duration(time.Now().UnixNano()-sentAt.Load()))
				if seq++; hubTestSeq(frame) != seq {
					gaps.Add(1)
				}
				delivered <- struct{}{}
			}
		})
	}

	b.ReportAllocs()
	for b.Loop() {
		sentAt.Store(time.Now().UnixNano())
		e.hub.Publish("run", hubTestEpochMetrics)
		timeout := time.NewTimer(hubTestWait)
		for range n {
			select {
			case <-delivered:
			case <-timeout.C:
				b.Fatal("a client did not receive the message")
			}
		}
		timeout.Stop()
	}
	b.StopTimer()
	stopping.Store(true)
	e.hub.Publish("run", hubTestEpochMetrics) // each reader returns on it
	readers.Wait()
	if g := gaps.Load(); g > 0 {
		b.Fatalf("%d frames out of sequence", g)
	}
	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	latencies = nil
	slices.Sort(all)
	ms := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))]) / 1e6 }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(idle, "idle-B/conn")
	// Again once the pumps have written: their stacks may have grown.
	b.ReportMetric(float64(hubBenchLiveBytes()-before)/float64(n), "used-B/conn")
}

// hubBenchLiveBytes is the live heap plus goroutine stacks, after GC.
func hubBenchLiveBytes() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}
