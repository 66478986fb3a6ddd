package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

const (
	// hubInbox is how many Publish, Forget and CloseRun calls may wait for
	// the hub goroutine. They wait only when that many are pending, which
	// means the hub itself is behind; they never wait for a client.
	hubInbox = 1024

	// hubCloseGrace bounds every close handshake: writing our close frame,
	// waiting for the peer's reply, and Run's wait for all clients at
	// shutdown before it cuts the remaining connections.
	hubCloseGrace = time.Second

	// hubIOBufferSize is the Upgrader's read and write buffer size. Training
	// messages are under 1 KiB; a larger frame is still written whole.
	hubIOBufferSize = 1024
)

// Hub fans out run messages to /ws clients.
//
// One goroutine, Run, owns the client set, the subscriptions and the history;
// Publish, ServeWS, Forget and CloseRun hand it work over channels. Publish,
// Forget and CloseRun share one ordered inbox, so they take effect in the
// order they were called. Run must be running for them to make progress, and
// after Run returns they drop their work. The hub never blocks on a client:
// delivery is a non-blocking push onto the client's bounded queue, and a
// client whose queue is full is closed with CloseSlowClient.
type Hub struct {
	cfg      Config
	log      zerolog.Logger
	upgrader websocket.Upgrader

	inbox      chan hubOp
	register   chan *subscriber
	unregister chan *subscriber
	done       chan struct{} // closed when Run stops taking work
	count      atomic.Int64  // len(clients), for Clients
	pumps      sync.WaitGroup

	// Owned by Run.
	clients map[*subscriber]struct{}
	subs    map[string]map[*subscriber]struct{} // by run ID; "" is every run
	closing map[*subscriber]struct{}            // stopped by the hub, pumps still ending
	runs    map[string]*hubRun
	order   []*hubRun // runs in the order of their first message
}

// hubOp is a Publish, Forget or CloseRun call on its way to Run.
type hubOp struct {
	kind  hubOpKind
	runID string
	msg   []byte    // hubOpPublish: a private copy with room for the envelope
	lite  []byte    // hubOpPublish: Config.Abridge's stand-in for msg, or nil
	at    time.Time // hubOpPublish: when Publish was called, only for Config.OnPublish
}

// hubFrame is one published message ready for the socket: whole, and
// abridged for clients that did not ask for everything (nil: the same).
type hubFrame struct {
	full, lite []byte
}

// frameFor returns the frame c is sent.
func (f hubFrame) frameFor(c *subscriber) []byte {
	if f.lite == nil || c.full {
		return f.full
	}
	return f.lite
}

type hubOpKind uint8

const (
	hubOpPublish hubOpKind = iota
	hubOpForget
	hubOpCloseRun
)

// hubRun is one run's sequence counter and history.
type hubRun struct {
	id     string
	suffix []byte // envelopeSuffix(id)
	seq    uint64
	closed bool // CloseRun was called: joiners get the history, then 1000
	// frames holds the last ≤ History enveloped messages, each a whole text
	// frame (textFrame) ready for the socket. It is append-only:
	// an element is never rewritten, so a joining client may read a prefix of
	// it (its replay snapshot) while Run appends.
	frames []hubFrame
}

// NewHub returns a hub with cfg's limits (zero fields take their defaults).
// Start it with Run.
func NewHub(cfg Config, log zerolog.Logger) *Hub {
	cfg = cfg.withDefaults()
	h := &Hub{
		cfg:        cfg,
		log:        log,
		inbox:      make(chan hubOp, hubInbox),
		register:   make(chan *subscriber),
		unregister: make(chan *subscriber),
		done:       make(chan struct{}),
		clients:    make(map[*subscriber]struct{}),
		closing:    make(map[*subscriber]struct{}),
		subs:       make(map[string]map[*subscriber]struct{}),
		runs:       make(map[string]*hubRun),
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.WriteWait,
		ReadBufferSize:   hubIOBufferSize,
		WriteBufferSize:  hubIOBufferSize,
		// Pooled write buffers: an idle connection holds none.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     cfg.checkOrigin,
	}
	return h
}

// Run serves the hub until ctx is done. Then it closes every client with a
// close frame (1001 going away, "server shutting down"), waits up to
// hubCloseGrace for their close handshakes, cuts the connections still open,
// and returns once every client goroutine has ended. Call it once.
func (h *Hub) Run(ctx context.Context) {
	for {
		select {
		case op := <-h.inbox:
			h.apply(op)
		case c := <-h.register:
			h.add(c)
		case c := <-h.unregister:
			h.remove(c)
			delete(h.closing, c)
		case <-ctx.Done():
			h.shutdown()
			return
		}
	}
}

// Publish appends msg, a marshalled JSON object, to run runID's history with
// the run's next seq (1, 2, 3, …) and delivers it to every client subscribed
// to the run or to all runs, adding "run_id" and "seq" (see Envelope). msg is
// copied; the caller may reuse it. A msg that is not a JSON object, or an
// empty runID, is logged and dropped without taking a seq. Publish never blocks on a client; it
// returns at once after Run has returned.
func (h *Hub) Publish(runID string, msg []byte) {
	msg = bytes.TrimSpace(msg)
	if len(msg) == 0 || msg[0] != '{' || !json.Valid(msg) {
		h.log.Error().Str("run_id", runID).Int("bytes", len(msg)).Msg("ws: dropped a published message that is not a JSON object")
		return
	}
	if runID == "" { // "" names the every-run subscription
		h.log.Error().Msg("ws: dropped a published message without a run ID")
		return
	}
	// Room for the envelope, so Run appends it in place.
	withRoom := func(msg []byte) []byte {
		buf := make([]byte, len(msg), len(msg)+len(runID)+48)
		copy(buf, msg)
		return buf
	}
	op := hubOp{kind: hubOpPublish, runID: runID, msg: withRoom(msg)}
	if h.cfg.Abridge != nil {
		if lite := h.cfg.Abridge(msg); lite != nil {
			if _, _, ok := envelopeBody(lite); ok {
				op.lite = withRoom(lite)
			} else {
				h.log.Error().Str("run_id", runID).Msg("ws: Abridge returned no JSON object; sending the message whole")
			}
		}
	}
	if h.cfg.OnPublish != nil {
		op.at = time.Now()
	}
	h.send(op)
}

// ServeWS upgrades the request and registers the client. The caller has
// already checked auth and the connection cap; the Origin is checked here
// against AllowedOrigins (HTTP 403 when refused).
//
// The query parameter run=<id> subscribes to that run only; without it the
// client gets every run. The client first receives the kept history of its
// run(s), in order (for all runs: by each run's first message, then seq),
// then live messages, with no duplicate and no gap between the two. With
// deltas=all it gets every message whole; without, Config.Abridge's
// stand-ins where it made one (same seq).
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request) {
	select {
	case <-h.done:
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	default:
	}
	runID := r.URL.Query().Get("run")
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has already answered with an HTTP error.
		h.log.Debug().Err(err).Str("remote", r.RemoteAddr).Str("origin", r.Header.Get("Origin")).Msg("ws: upgrade refused")
		return
	}
	c := newSubscriber(h, conn, runID)
	c.full = r.URL.Query().Get("deltas") == "all"
	select {
	case h.register <- c:
	case <-h.done:
		conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, hubReasonShutdown),
			time.Now().Add(hubCloseGrace))
		conn.Close()
	}
}

// Clients returns the current number of registered clients.
func (h *Hub) Clients() int { return int(h.count.Load()) }

// Forget drops run runID's history; later joiners get none of it. Clients
// subscribed to it stay connected. A message published to the run afterwards
// starts a new history at seq 1, so call it only for finished runs.
func (h *Hub) Forget(runID string) { h.send(hubOp{kind: hubOpForget, runID: runID}) }

// CloseRun marks run runID finished. Each client subscribed to that run
// alone gets every message published to it before the call, then a normal
// close (1000, "run finished"); a client joining it later gets its history
// and the same close. Clients of every run are unaffected. Forget still
// drops the history.
func (h *Hub) CloseRun(runID string) { h.send(hubOp{kind: hubOpCloseRun, runID: runID}) }

// send hands op to Run, or drops it once Run has returned.
func (h *Hub) send(op hubOp) {
	select {
	case h.inbox <- op:
	case <-h.done:
	}
}

func (h *Hub) apply(op hubOp) {
	switch op.kind {
	case hubOpPublish:
		h.deliver(op.runID, op.msg, op.lite, op.at)
	case hubOpForget:
		h.forgetRun(op.runID)
	case hubOpCloseRun:
		h.closeRun(op.runID)
	}
}

// run returns run id's state, creating it on first use.
func (h *Hub) run(id string) *hubRun {
	r := h.runs[id]
	if r == nil {
		r = &hubRun{id: id, suffix: envelopeSuffix(id)}
		h.runs[id] = r
		h.order = append(h.order, r)
	}
	return r
}

// deliver stamps msg with its run's next seq, keeps it in the history and
// pushes it to the run's subscribers and to every-run subscribers. at is
// when Publish was called (zero unless Config.OnPublish is set).
func (h *Hub) deliver(runID string, msg, lite []byte, at time.Time) {
	r := h.run(runID)
	r.seq++
	if h.cfg.OnPublish != nil {
		h.cfg.OnPublish(runID, r.seq, at)
	}
	frame := hubFrame{full: r.frame(msg)}
	if lite != nil {
		frame.lite = r.frame(lite)
	}

	// Drop the oldest by reslicing, never by writing, so replay snapshots
	// stay valid; append moves the window to a new array when it runs out
	// of room, which keeps the cost amortised O(1).
	if len(r.frames) >= h.cfg.History {
		r.frames = r.frames[len(r.frames)-h.cfg.History+1:]
	}
	r.frames = append(r.frames, frame)

	for c := range h.subs[""] {
		h.push(c, frame)
	}
	for c := range h.subs[runID] {
		h.push(c, frame)
	}
}

// frame envelopes msg with r's current seq and frames it for the socket
// (see frame.go).
func (r *hubRun) frame(msg []byte) []byte {
	body, empty, _ := envelopeBody(msg) // Publish checked msg and its stand-in
	return textFrame(appendEnvelope(body, empty, r.suffix, r.seq))
}

// push queues frame for c, or closes c as a slow client when its queue is
// full.
func (h *Hub) push(c *subscriber, frame hubFrame) {
	if c.out.push(frame.frameFor(c), h.cfg.SendQueue) {
		return
	}
	h.remove(c)
	h.closing[c] = struct{}{}
	if c.stop(CloseSlowClient, hubReasonSlowClient, false) {
		c.log.Warn().Int("send_queue", h.cfg.SendQueue).Msg("ws: closing slow client")
	}
}

// closeRun closes the run's own subscribers once they have written what they
// were handed, and marks the run so that later joiners are closed too.
func (h *Hub) closeRun(id string) {
	h.run(id).closed = true
	for c := range h.subs[id] {
		h.remove(c)
		h.closing[c] = struct{}{}
		c.stop(websocket.CloseNormalClosure, hubReasonRunFinished, true)
	}
}

// add registers c and hands it its replay snapshot: the history up to now,
// which it writes before anything it finds in its queue.
func (h *Hub) add(c *subscriber) {
	if c.runID == "" {
		for _, r := range h.order {
			if len(r.frames) > 0 {
				c.replay = append(c.replay, r.frames[:len(r.frames):len(r.frames)])
			}
		}
	} else if r := h.runs[c.runID]; r != nil && len(r.frames) > 0 {
		c.replay = [][]hubFrame{r.frames[:len(r.frames):len(r.frames)]}
	}
	c.log.Debug().Str("run", c.runID).Int("replay_runs", len(c.replay)).Msg("ws: client joined")
	if r := h.runs[c.runID]; c.runID != "" && r != nil && r.closed {
		// A finished run: its history, then the close its clients got.
		h.closing[c] = struct{}{}
		c.stop(websocket.CloseNormalClosure, hubReasonRunFinished, true)
	} else {
		h.clients[c] = struct{}{}
		set := h.subs[c.runID]
		if set == nil {
			set = make(map[*subscriber]struct{})
			h.subs[c.runID] = set
		}
		set[c] = struct{}{}
		h.count.Add(1)
	}
	h.pumps.Add(1)
	go c.writePump()
}

// remove unsubscribes c, if it is still registered.
func (h *Hub) remove(c *subscriber) {
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	if set := h.subs[c.runID]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.subs, c.runID)
		}
	}
	h.count.Add(-1)
}

func (h *Hub) forgetRun(id string) {
	if h.runs[id] == nil {
		return
	}
	delete(h.runs, id)
	h.order = slices.DeleteFunc(h.order, func(r *hubRun) bool { return r.id == id })
}

// shutdown delivers what is already published, closes every client with
// 1001 once it has written that, and waits for their goroutines, cutting the
// connections that have not finished their close handshake within
// hubCloseGrace.
func (h *Hub) shutdown() {
	for drained := false; !drained; {
		select {
		case op := <-h.inbox:
			h.apply(op)
		default:
			drained = true
		}
	}
	close(h.done)
	for c := range h.clients {
		c.stop(websocket.CloseGoingAway, hubReasonShutdown, true)
	}
	finished := make(chan struct{})
	go func() {
		h.pumps.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(hubCloseGrace):
		for c := range h.clients {
			c.conn.Close() // unblocks both pumps
		}
		for c := range h.closing {
			c.conn.Close()
		}
		<-finished
	}
	for c := range h.clients {
		h.remove(c)
	}
	clear(h.closing)
	h.log.Debug().Msg("ws: hub stopped")
}
