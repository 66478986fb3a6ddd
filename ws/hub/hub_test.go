package hub

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// testWait bounds every wait in these tests: a stuck hub fails the test
// instead of hanging it.
const testWait = 10 * time.Second

// testEnv is a running hub behind an httptest server whose handler reads
// run=, since=RUN:SEQ,… and deltas= as the server does. Its cleanup stops
// the hub, checks that Run returned, and then that no goroutine leaked.
type testEnv struct {
	t      testing.TB
	hub    *Hub
	srv    *httptest.Server
	url    string // ws://host/ws
	cancel context.CancelFunc
	ran    chan struct{} // closed when Run has returned

	mu  sync.Mutex
	seq map[string]uint64 // the last seq published per stream

	watcher *websocket.Conn // see sync
}

func newTestEnv(t testing.TB, cfg Config, wrap func(net.Listener) net.Listener) *testEnv {
	t.Helper()
	checkGoroutines(t)
	e := &testEnv{t: t, hub: NewHub(cfg, zerolog.Nop()), ran: make(chan struct{}), seq: map[string]uint64{}}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() {
		e.hub.Run(ctx)
		close(e.ran)
	}()
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sub := Subscription{Stream: q.Get("run"), Since: map[string]uint64{}}
		for _, p := range strings.Split(q.Get("since"), ",") {
			if id, s, ok := strings.Cut(p, ":"); ok {
				sub.Since[id], _ = strconv.ParseUint(s, 10, 64)
			}
		}
		switch q.Get("deltas") {
		case "all":
			sub.Deltas = DeltasAll
		case "final":
			sub.Deltas = DeltasFinal
		}
		if p := q.Get("prelude"); p != "" {
			sub.Prelude = [][]byte{[]byte(p)}
		}
		e.hub.Serve(w, r, sub)
	}))
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
func (e *testEnv) stop() {
	e.t.Helper()
	e.cancel()
	select {
	case <-e.ran:
	case <-time.After(testWait):
		e.t.Fatal("Run did not return after its context was cancelled")
	}
}

// dial opens a client with query (e.g. "?run=a"); the test's cleanup closes
// it.
func (e *testEnv) dial(query string) *websocket.Conn {
	e.t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(e.url+query, nil)
	if err != nil {
		e.t.Fatalf("dial %s: %v", query, err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

// payload is body (a JSON object without its closing brace) with the
// envelope the log writer adds.
func payload(body, stream string, seq uint64) []byte {
	return fmt.Appendf(nil, `%s,"run_id":%q,"seq":%d}`, body, stream, seq)
}

// publish appends stream's next message, an epoch_metrics with n = its seq.
func (e *testEnv) publish(stream string) uint64 {
	return e.publishBody(stream, `{"type":"epoch_metrics"`, false)
}

// end appends stream's terminal message.
func (e *testEnv) end(stream string) uint64 {
	return e.publishBody(stream, `{"type":"training_complete"`, true)
}

func (e *testEnv) publishBody(stream, body string, terminal bool) uint64 {
	e.mu.Lock()
	e.seq[stream]++
	seq := e.seq[stream]
	e.mu.Unlock()
	e.hub.Append(Message{Stream: stream, Seq: seq, Payload: payload(fmt.Sprintf(`%s,"n":%d`, body, seq), stream, seq), Terminal: terminal})
	return seq
}

// sync returns once Run has applied every call made before it: it appends
// to a stream of its own, through the same ordered inbox, and waits for a
// watcher client to get that message. The watcher counts in Clients.
func (e *testEnv) sync() {
	e.t.Helper()
	if e.watcher == nil {
		e.watcher = e.dial("?run=" + syncStream)
	}
	want := e.publish(syncStream)
	for {
		if f := read(e.t, e.watcher); f.Seq == want {
			return
		}
	}
}

const syncStream = "_sync"

// checkGoroutines fails t if, at its cleanup, more goroutines run than at
// the call, after a short grace for goroutines that are ending.
func checkGoroutines(t testing.TB) {
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

// waitFor polls cond until it holds, failing t after testWait.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// testFrame is the part of a message the tests check.
type testFrame struct {
	Type       string `json:"type"`
	RunID      string `json:"run_id"`
	Seq        uint64 `json:"seq"`
	N          int    `json:"n"`
	MissedFrom uint64 `json:"missed_from"`
	MissedTo   uint64 `json:"missed_to"`
}

func f(stream string, seq uint64) testFrame { return testFrame{RunID: stream, Seq: seq} }

// read reads one frame, which must be one JSON object.
func read(t testing.TB, conn *websocket.Conn) testFrame {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(testWait))
	typ, data, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var fr testFrame
	if typ != websocket.TextMessage || json.Unmarshal(data, &fr) != nil {
		t.Fatalf("frame is not a JSON object in a text message: type %d %q", typ, data)
	}
	return fr
}

// expect reads len(want) frames and checks their stream and seq.
func expect(t testing.TB, conn *websocket.Conn, want ...testFrame) {
	t.Helper()
	for i, w := range want {
		if got := read(t, conn); got.RunID != w.RunID || got.Seq != w.Seq {
			t.Fatalf("frame %d = %s/%d (%s), want %s/%d", i, got.RunID, got.Seq, got.Type, w.RunID, w.Seq)
		}
	}
}

// expectClose reads until the close frame and checks its code and reason.
func expectClose(t testing.TB, conn *websocket.Conn, code int, reason string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(testWait))
	for {
		_, data, err := conn.ReadMessage()
		if err == nil {
			if code == websocket.CloseNormalClosure || code == websocket.CloseGoingAway {
				t.Fatalf("got %q before the close %d", data, code)
			}
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

// Every stream's messages reach the clients in order, as appended, with
// every byte of the payload.
func TestOrder(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	all, onlyA := e.dial(""), e.dial("?run=a")
	waitFor(t, "2 clients", func() bool { return e.hub.Clients() == 2 })
	const n = 20
	for i := uint64(1); i <= n; i++ {
		e.hub.Append(Message{Stream: "a", Seq: i, Payload: payload(fmt.Sprintf(`{"type":"epoch_metrics","n":%d,"nested":{"s":"} {","l":[1,{}]}`, i), "a", i)})
		e.publish("b")
	}
	for i := uint64(1); i <= n; i++ {
		expect(t, all, f("a", i), f("b", i))
		onlyA.SetReadDeadline(time.Now().Add(testWait))
		_, data, err := onlyA.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if want := payload(fmt.Sprintf(`{"type":"epoch_metrics","n":%d,"nested":{"s":"} {","l":[1,{}]}`, i), "a", i); string(data) != string(want) {
			t.Fatalf("frame %d = %s, want %s", i, data, want)
		}
	}
}

// Messages appended out of order, or twice, reach clients once each, in
// seq order: the log's feed and a Load can overlap.
func TestOutOfOrderAndDuplicates(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	c := e.dial("?run=a")
	waitFor(t, "the client", func() bool { return e.hub.Clients() == 1 })
	for _, seq := range []uint64{1, 3, 2, 2, 1, 5, 4, 3, 6} {
		e.hub.Append(Message{Stream: "a", Seq: seq, Payload: payload(`{"type":"epoch_metrics"`, "a", seq)})
	}
	for want := uint64(1); want <= 6; want++ {
		expect(t, c, f("a", want))
	}
}

// A client joining while messages are appended gets the history and then
// the live messages, each exactly once, in order.
func TestMidRunJoin(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	for range 50 {
		e.publish("r")
	}
	const joiners = 8
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 51; i <= 100; i++ {
			e.publish("r")
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
	e.publish("r") // after 100, nothing but 101 may come
	for j, conn := range conns {
		for want := uint64(1); want <= 101; want++ {
			if got := read(t, conn); got.Seq != want || got.N != int(want) {
				t.Fatalf("joiner %d: got seq %d (n %d), want %d", j, got.Seq, got.N, want)
			}
		}
	}
}

// A plain client gets the streams in progress, ordered by start, and every
// stream that starts later, but never the history of an ended one; run=ID
// gets that stream alone, ended or not.
func TestPlainClientsSkipEndedStreams(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	e.publish("old")
	e.end("old")
	e.publish("a")
	e.publish("b")
	e.publish("a")
	e.sync()
	all, a, old := e.dial(""), e.dial("?run=a"), e.dial("?run=old")
	expect(t, old, f("old", 1), f("old", 2))
	expectClose(t, old, websocket.CloseNormalClosure, ReasonEnded)
	waitFor(t, "3 clients", func() bool { return e.hub.Clients() == 3 }) // and the watcher
	// A registered client may still be catching up: what is appended then
	// comes in its next batch, stream by stream (by start), not in the order
	// appended. Appending in stream order keeps the expected order the same
	// whenever the client goes live.
	e.end("a")
	e.publish("b")
	e.publish("c")
	expect(t, all, f("a", 1), f("a", 2), f("b", 1), f(syncStream, 1), f("a", 3), f("b", 2), f("c", 1))
	expect(t, a, f("a", 1), f("a", 2), f("a", 3))
	expectClose(t, a, websocket.CloseNormalClosure, ReasonEnded)
	// The plain client stays, and a new one no longer gets "a".
	late := e.dial("")
	waitFor(t, "the late client", func() bool { return e.hub.Clients() == 3 })
	e.sync()
	e.publish("c")
	expect(t, all, f(syncStream, 2), f("c", 2))
	expect(t, late, f("b", 1), f("b", 2), f(syncStream, 1), f("c", 1), f(syncStream, 2), f("c", 2))
}

// since=RUN:SEQ resumes exactly after SEQ, for an ended stream too, and a
// plain client still gets the other streams in progress from their start.
func TestResume(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	for range 5 {
		e.publish("a")
	}
	e.end("a")
	e.publish("b")
	e.publish("b")
	e.sync()
	c := e.dial("?since=a:3,b:1")
	expect(t, c, f("a", 4), f("a", 5), f("a", 6), f("b", 2), f(syncStream, 1))
	one := e.dial("?run=a&since=a:5")
	expect(t, one, f("a", 6))
	expectClose(t, one, websocket.CloseNormalClosure, ReasonEnded)
	done := e.dial("?run=a&since=a:6")
	expectClose(t, done, websocket.CloseNormalClosure, ReasonEnded)
}

// Where the hub no longer keeps what a client needs, the client is told so
// in one replay_gap message, then gets what remains.
func TestGapNotice(t *testing.T) {
	e := newTestEnv(t, Config{History: 10}, nil)
	for range 25 {
		e.publish("r")
	}
	e.sync()
	for _, q := range []string{"?run=r", "?run=r&since=r:3"} {
		c := e.dial(q)
		if got := read(t, c); got.Type != "replay_gap" || got.RunID != "r" || got.MissedTo != 15 || (got.MissedFrom != 1 && got.MissedFrom != 4) {
			t.Fatalf("%s: first frame %+v, want a replay_gap up to 15", q, got)
		}
		for want := uint64(16); want <= 25; want++ {
			expect(t, c, f("r", want))
		}
	}
	if e.hub.Cached("r") != true {
		t.Error("a trimmed stream should not ask for a Load")
	}
}

// History far longer than the send queue reaches a joining client whole,
// and live messages appended while it catches up do not close it as slow.
func TestLongCatchUpIsNotSlow(t *testing.T) {
	const n = 100000
	e := newTestEnv(t, Config{SendQueue: 8}, nil)
	for range n {
		e.publish("r")
	}
	e.sync()
	conn := e.dial("?run=r")
	stop := make(chan struct{})
	var live sync.WaitGroup
	live.Go(func() { // 500 live messages, far more than the queue, during the catch-up
		for range 500 {
			select {
			case <-stop:
				return
			default:
			}
			e.publish("r")
			time.Sleep(20 * time.Microsecond)
		}
	})
	conn.SetReadDeadline(time.Now().Add(testWait))
	for want := uint64(1); want <= n+500; want++ {
		_, data, err := conn.ReadMessage()
		if err != nil {
			close(stop)
			t.Fatalf("after %d frames: %v", want-1, err)
		}
		if suffix := fmt.Sprintf(`"seq":%d}`, want); !strings.HasSuffix(string(data), suffix) {
			close(stop)
			t.Fatalf("frame %.80q, want seq %d", data, want)
		}
	}
	live.Wait()
}

// Load puts the log's older messages in front of what the hub kept, for
// later joiners, and Cached says when a stream needs one.
func TestLoad(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	msg := func(seq uint64, terminal bool) Message {
		return Message{Stream: "a", Seq: seq, Payload: payload(`{"type":"epoch_metrics"`, "a", seq), Terminal: terminal}
	}
	// The feed saw the stream from seq 4 on: the hub started late.
	e.hub.Append(msg(4, false))
	e.hub.Append(msg(5, false))
	if e.hub.Cached("a") {
		t.Error("Cached before Load")
	}
	e.hub.Load("a", []Message{msg(1, false), msg(2, false), msg(3, false), msg(4, false), msg(5, false), msg(6, false)})
	if !e.hub.Cached("a") {
		t.Error("not Cached after Load")
	}
	c := e.dial("?run=a")
	for want := uint64(1); want <= 6; want++ {
		expect(t, c, f("a", want))
	}
	e.hub.Append(msg(7, true))
	expect(t, c, f("a", 7))
	expectClose(t, c, websocket.CloseNormalClosure, ReasonEnded)

	// A stream the log has lost the start of: Load starts it there.
	e.hub.Load("z", []Message{{Stream: "z", Seq: 40, Payload: payload(`{"type":"epoch_metrics"`, "z", 40)}})
	z := e.dial("?run=z")
	if got := read(t, z); got.Type != "replay_gap" || got.MissedFrom != 1 || got.MissedTo != 39 {
		t.Fatalf("first frame %+v, want a replay_gap 1..39", got)
	}
	expect(t, z, f("z", 40))
}

// deltas= picks the prediction_delta messages: none by default, only the
// final ones, or all; every other message reaches everyone.
func TestDeltas(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	none, final, all := e.dial("?run=r"), e.dial("?run=r&deltas=final"), e.dial("?run=r&deltas=all")
	waitFor(t, "3 clients", func() bool { return e.hub.Clients() == 3 })
	e.publish("r")
	e.publishBody("r", `{"type":"prediction_delta","fold_id":0,"predictions":[]`, false)
	e.publishBody("r", `{"type":"prediction_delta","fold_id":0,"final":true,"predictions":[]`, false)
	e.end("r")
	expect(t, none, f("r", 1), f("r", 4))
	expect(t, final, f("r", 1), f("r", 3), f("r", 4))
	expect(t, all, f("r", 1), f("r", 2), f("r", 3), f("r", 4))
	// The same for a client that joins afterwards, from the history.
	expect(t, e.dial("?run=r&deltas=final"), f("r", 1), f("r", 3), f("r", 4))
}

// Ended streams beyond KeepEnded leave memory, oldest first; the byte
// budget drops ended streams before it touches one in progress.
func TestEviction(t *testing.T) {
	e := newTestEnv(t, Config{KeepEnded: 2}, nil)
	for _, s := range []string{"a", "b", "c"} {
		e.publish(s)
		e.end(s)
	}
	e.sync()
	if e.hub.Cached("a") || !e.hub.Cached("b") || !e.hub.Cached("c") {
		t.Errorf("cached a %v b %v c %v, want only b and c", e.hub.Cached("a"), e.hub.Cached("b"), e.hub.Cached("c"))
	}

	e2 := newTestEnv(t, Config{TotalBytes: 3000}, nil)
	pad := strings.Repeat("x", 400)
	for range 3 {
		e2.publishBody("live", `{"type":"epoch_metrics","pad":"`+pad+`"`, false)
	}
	e2.publishBody("done", `{"type":"epoch_metrics","pad":"`+pad+`"`, false)
	e2.end("done")
	for range 3 { // past the budget: "done" goes first
		e2.publishBody("live", `{"type":"epoch_metrics","pad":"`+pad+`"`, false)
	}
	e2.sync()
	if e2.hub.Cached("done") {
		t.Error("the ended stream is still cached past the byte budget")
	}
	c := e2.dial("?run=live")
	for want := uint64(1); want <= 6; want++ {
		expect(t, c, f("live", want))
	}
}

// A prelude is written first, and a text ping is answered with a JSON
// pong.
func TestPreludeAndPing(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	e.publish("r")
	c := e.dial(`?run=r&prelude={"status":"message","message":"queued"}`)
	c.SetReadDeadline(time.Now().Add(testWait))
	if _, data, err := c.ReadMessage(); err != nil || string(data) != `{"status":"message","message":"queued"}` {
		t.Fatalf("first frame %q %v", data, err)
	}
	expect(t, c, f("r", 1))
	if err := c.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got.Type != "pong" {
		t.Fatalf("answer to ping: %+v", got)
	}
	// A protocol ping gets a protocol pong.
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(testWait)); err != nil {
		t.Fatal(err)
	}
	go c.ReadMessage() // the pong handler runs inside a read
	select {
	case s := <-pong:
		if s != "hi" {
			t.Errorf("pong %q", s)
		}
	case <-time.After(testWait):
		t.Fatal("no pong")
	}
}

// An oversize client message closes the connection with 1009.
func TestOversizeMessage(t *testing.T) {
	e := newTestEnv(t, Config{MaxMessageBytes: 16}, nil)
	c := e.dial("")
	c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 100)))
	expectClose(t, c, websocket.CloseMessageTooBig, "")
}

// A refused Origin gets HTTP 403 before the upgrade.
func TestOrigin(t *testing.T) {
	e := newTestEnv(t, Config{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "https://ok.example" }}, nil)
	_, resp, err := websocket.DefaultDialer.Dial(e.url, http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v", err, resp)
	}
	c, _, err := websocket.DefaultDialer.Dial(e.url, http.Header{"Origin": {"https://ok.example"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// Cancelling Run's context flushes what was appended, closes every client
// with 1001, and ends every goroutine (checked by the cleanup).
func TestShutdown(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	conns := []*websocket.Conn{e.dial(""), e.dial("?run=a"), e.dial("?run=b")}
	waitFor(t, "3 clients", func() bool { return e.hub.Clients() == 3 })
	e.publish("a")
	e.publish("b")
	start := time.Now()
	e.cancel()
	expect(t, conns[0], f("a", 1), f("b", 1))
	expect(t, conns[1], f("a", 1))
	expect(t, conns[2], f("b", 1))
	for _, conn := range conns {
		expectClose(t, conn, websocket.CloseGoingAway, ReasonShutdown)
	}
	e.stop()
	if d := time.Since(start); d >= closeGrace {
		t.Errorf("Run took %v to shut down", d)
	}
	if n := e.hub.Clients(); n != 0 {
		t.Errorf("Clients() = %d after Run returned", n)
	}
	_, resp, err := websocket.DefaultDialer.Dial(e.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after shutdown: %v, %v; want HTTP 503", err, resp)
	}
	e.publish("a") // returns at once
	if e.hub.Cached("a") {
		t.Error("Cached after Run returned")
	}
}

// A peer that stops answering pings is dropped after PongWait.
func TestDeadPeer(t *testing.T) {
	e := newTestEnv(t, Config{PongWait: 300 * time.Millisecond}, nil)
	raw := rawDial(t, strings.TrimPrefix(e.srv.URL, "http://"))
	defer raw.Close()
	waitFor(t, "the client", func() bool { return e.hub.Clients() == 1 })
	waitFor(t, "the dead peer to go", func() bool { return e.hub.Clients() == 0 })
}

// smallBufListener gives accepted connections a small socket send
// buffer, so that a client that stops reading stalls the server's writes
// after a few messages, as a slow link would.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// TestStalledClient: a client that never reads is closed with
// CloseSlowClient while 20 others get all 2,000 messages, and Append never
// waits for it.
func TestStalledClient(t *testing.T) {
	const (
		good   = 20
		total  = 2000
		queue  = 8
		window = queue // published between waits, so no reader has more than its queue holds
	)
	e := newTestEnv(t, Config{SendQueue: queue}, func(l net.Listener) net.Listener { return smallBufListener{l} })

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
				conn.SetReadDeadline(time.Now().Add(testWait))
				_, data, err := conn.ReadMessage()
				if err == nil && seqOf(data) != want {
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
	waitFor(t, "all clients", func() bool { return e.hub.Clients() == good+1 })

	pad := strings.Repeat("x", 1000)
	var slowest time.Duration
	dropped := false
	for i := 1; i <= total; i++ {
		start := time.Now()
		e.publishBody("r", fmt.Sprintf(`{"type":"epoch_metrics","pad":%q`, pad), false)
		slowest = max(slowest, time.Since(start))
		if i%window != 0 && i != total {
			continue
		}
		waitFor(t, fmt.Sprintf("message %d at every reader", i), func() bool {
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
			expectClose(t, stalled, CloseSlowClient, ReasonSlowClient)
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
	// An Append that waited on the stalled client would take WriteWait (10s).
	if slowest > 250*time.Millisecond {
		t.Errorf("slowest Append took %v", slowest)
	}
}

// rawDial opens a WebSocket with a hand-written handshake: no
// goroutine and no buffer on the client side, so that the server's share of
// memory can be measured.
func rawDial(tb testing.TB, addr string) net.Conn {
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

// readRawFrame reads one unfragmented server frame (servers never
// mask), returning its opcode and payload in buf's storage.
func readRawFrame(br *bufio.Reader, buf []byte) (byte, []byte, error) {
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

// seqOf returns the seq at the end of an enveloped frame.
func seqOf(frame []byte) uint64 {
	var seq uint64
	i := len(frame) - 2 // before '}'
	for ; i >= 0 && frame[i] >= '0' && frame[i] <= '9'; i-- {
	}
	for _, d := range frame[i+1 : len(frame)-1] {
		seq = seq*10 + uint64(d-'0')
	}
	return seq
}

// seedEpochMetrics is a seed epoch_metrics message, about 600 bytes,
// without its closing brace (see payload).
const seedEpochMetrics = (`{"type":"epoch_metrics","fold_id":0,"epoch":10,"train_loss":0.1234,"train_nll":0.0987,` +
	`"train_bce":0.0234,"train_brier":0.1345,"val_loss":0.2345,"val_nll":0.1987,"val_bce":0.0456,"val_brier":0.1567,` +
	`"val_auc":0.6789,"DirAcc":0.5678,"ECE":0.0456,"MZ_intercept":0.0012,"MZ_slope":0.9987,"MZ_F_p":0.3456,` +
	`"PIT_KS_p":0.4567,"conformal_coverage":0.9012,"conformal_width":0.1234,"elapsed_seconds":123.45`)

// BenchmarkBroadcast publishes one seed epoch_metrics message at a time
// to N clients on loopback and waits until every client has it: ns/op is the
// time to reach all N; p50-ms and p99-ms are over every single delivery
// (publish to the client's read of the whole frame). It also reports the
// memory per connection (heap and stacks after GC: the server's share plus
// the client's bare socket), idle-B/conn before any message and used-B/conn
// after the broadcast, with the clients' readers gone.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchBroadcast(b, n) })
	}
}

func benchBroadcast(b *testing.B, n int) {
	// History 1: the clients are there from the start, and used-B/conn
	// should not count the history.
	var seq uint64
	e := newTestEnv(b, Config{History: 1}, nil)
	addr := strings.TrimPrefix(e.srv.URL, "http://")

	before := liveBytes()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = rawDial(b, addr)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	waitFor(b, "all clients", func() bool { return e.hub.Clients() == n })
	idle := float64(liveBytes()-before) / float64(n)

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
				op, frame, err := readRawFrame(br, buf)
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
				if seq++; seqOf(frame) != seq {
					gaps.Add(1)
				}
				delivered <- struct{}{}
			}
		})
	}

	b.ReportAllocs()
	for b.Loop() {
		sentAt.Store(time.Now().UnixNano())
		seq++
		e.hub.Append(Message{Stream: "run", Seq: seq, Payload: payload(seedEpochMetrics, "run", seq)})
		timeout := time.NewTimer(testWait)
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
	seq++
	e.hub.Append(Message{Stream: "run", Seq: seq, Payload: payload(seedEpochMetrics, "run", seq)}) // each reader returns on it
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
	b.ReportMetric(float64(liveBytes()-before)/float64(n), "used-B/conn")
}

// liveBytes is the live heap plus goroutine stacks, after GC.
func liveBytes() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// A broadcast reaches every live client following all streams, as it was
// sent (no seq), in order with the streams' messages; clients of one stream
// do not get it, and a client joining later is not replayed it.
func TestBroadcast(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	all, one := e.dial(""), e.dial("?run=a")
	waitFor(t, "two clients", func() bool { return e.hub.Clients() == 2 })
	e.publish("a")
	e.hub.Broadcast([]byte(` {"type":"chart_update","dataset":"d"} `))
	e.hub.Broadcast([]byte(`not json`)) // dropped
	e.publish("a")
	expect(t, all, f("a", 1))
	all.SetReadDeadline(time.Now().Add(testWait))
	if _, b, err := all.ReadMessage(); err != nil || string(b) != `{"type":"chart_update","dataset":"d"}` {
		t.Fatalf("broadcast frame %q %v", b, err)
	}
	expect(t, all, f("a", 2))
	expect(t, one, f("a", 1), f("a", 2))
	late := e.dial("")
	expect(t, late, f("a", 1), f("a", 2))
	waitFor(t, "three clients", func() bool { return e.hub.Clients() == 3 })
	e.publish("a")
	if got := read(t, late); got.Type != "epoch_metrics" || got.Seq != 3 {
		t.Fatalf("after the history the late client got %+v, want seq 3 (no replayed broadcast)", got)
	}
}
