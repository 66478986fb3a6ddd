package hub

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
	// inboxSize is how many calls (Append, Load, joins, catch-up requests)
	// may wait for the hub goroutine. They wait only when that many are
	// pending, which means the hub itself is behind; never for a client.
	inboxSize = 1024

	// closeGrace bounds every close handshake: writing our close frame,
	// waiting for the peer's reply, and Run's wait for all clients at
	// shutdown before it cuts the remaining connections.
	closeGrace = time.Second

	// ioBufferSize is the Upgrader's read and write buffer size. Data frames
	// bypass gorilla's writer (see frame.go); this serves the handshake and
	// the client's small messages.
	ioBufferSize = 1024
)

// Deltas says which prediction_delta messages a client receives. They are
// 95% of a run's bytes and the seed's clients read none of them.
type Deltas uint8

const (
	DeltasNone  Deltas = iota // none (the default)
	DeltasFinal               // only each fold's final, calibrated delta, with its rows
	DeltasAll                 // every delta, with its rows
)

// Subscription is what one client follows.
type Subscription struct {
	// Stream is the one stream followed: its whole kept history, live
	// messages, then a normal close (1000) after its terminal message. ""
	// follows every stream in progress (not ended) when the client joins,
	// and every stream that starts later, and is never closed at a stream's
	// end.
	Stream string
	// Since maps streams to the last seq the client already has: it gets
	// exactly what follows. A stream named here is followed even if it has
	// ended since.
	Since map[string]uint64
	// Deltas picks the prediction_delta messages sent.
	Deltas Deltas
	// Prelude holds whole JSON objects written to this client before
	// anything else (a queue position, say); they belong to no stream.
	Prelude [][]byte
	// Left, when not nil, is called once the client is gone: its
	// connection closed for whatever reason, or its upgrade failed. It is
	// called on a goroutine of the hub's, never Run's, and may block.
	Left func()
}

// Hub fans streams out to WebSocket clients.
//
// One goroutine, Run, owns the streams and the clients; every other method
// hands it work through one ordered inbox, so Append and Load calls take
// effect in the order they were made. Run must be running for them to make
// progress; after Run returns they drop their work. The hub never blocks on
// a client: live delivery is a non-blocking push onto the client's bounded
// queue, and history is handed to a client's own goroutine as slices of the
// append-only cache.
type Hub struct {
	cfg      Config
	log      zerolog.Logger
	upgrader websocket.Upgrader

	inbox chan func()
	done  chan struct{} // closed when Run stops taking work
	count atomic.Int64  // connected clients, for Clients
	stats stats
	pumps sync.WaitGroup

	// Owned by Run.
	streams    map[string]*stream
	order      []*stream // by creation
	created    uint64    // streams created so far
	totalBytes int64
	clients    map[*subscriber]struct{}            // every registered client, catching up or live
	live       map[string]map[*subscriber]struct{} // live clients by stream; "" every stream
	closing    map[*subscriber]struct{}            // stopped by the hub, pumps still ending
}

// NewHub returns a hub with cfg's limits (zero fields take their defaults).
// Start it with Run.
func NewHub(cfg Config, log zerolog.Logger) *Hub {
	cfg = cfg.WithDefaults()
	h := &Hub{
		cfg:     cfg,
		log:     log,
		inbox:   make(chan func(), inboxSize),
		done:    make(chan struct{}),
		streams: make(map[string]*stream),
		clients: make(map[*subscriber]struct{}),
		live:    make(map[string]map[*subscriber]struct{}),
		closing: make(map[*subscriber]struct{}),
	}
	check := cfg.CheckOrigin
	if check == nil {
		check = func(*http.Request) bool { return true }
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.WriteWait,
		ReadBufferSize:   ioBufferSize,
		WriteBufferSize:  ioBufferSize,
		WriteBufferPool:  &sync.Pool{}, // an idle connection holds no write buffer
		CheckOrigin:      check,
	}
	return h
}

// Run serves the hub until ctx is done. Then it applies the work already
// handed to it, closes every client once it has written what it was given,
// with a close frame (1001 going away, "server shutting down"), waits up to
// closeGrace for their close handshakes, cuts the connections still open,
// and returns once every client goroutine has ended. Call it once.
func (h *Hub) Run(ctx context.Context) {
	for {
		select {
		case op := <-h.inbox:
			op()
		case <-ctx.Done():
			h.shutdown()
			return
		}
	}
}

// do hands op to Run, or drops it once Run has returned.
func (h *Hub) do(op func()) {
	select {
	case h.inbox <- op:
	case <-h.done:
	}
}

// Append adds m to its stream. Messages may come in any order and more than
// once: a seq already kept or delivered is dropped, one past a gap waits for
// the gap to fill. m.Payload must be a JSON object (its bytes are framed
// here, in the caller's goroutine, and not kept).
func (h *Hub) Append(m Message) {
	f := newFrame(m)
	h.do(func() { h.appendFrame(h.stream(m.Stream), f) })
}

// Load merges a stream's history read back from the log: msgs in seq order,
// the log's whole remaining history of the stream. Messages the hub has
// already are skipped; older ones are put in front of the kept history, for
// clients that join later; newer ones are delivered as Append does.
func (h *Hub) Load(stream string, msgs []Message) {
	frames := make([]frame, len(msgs))
	for i, m := range msgs {
		frames[i] = newFrame(m)
	}
	h.do(func() { h.load(stream, frames) })
}

// Broadcast sends msg, one JSON object, as it is to every live client
// that follows all streams (a plain /ws client), in order with the
// streams' messages (the same inbox). It belongs to no stream: no seq, not
// kept, never replayed to a client that joins later, nor to one still
// catching up; clients of one stream do not get it. It never blocks on a
// client (a full queue closes the client as slow) and copies msg; a msg
// that is not a JSON object is dropped.
func (h *Hub) Broadcast(msg []byte) {
	msg = bytes.TrimSpace(msg)
	if len(msg) == 0 || msg[0] != '{' || !json.Valid(msg) {
		h.log.Error().Int("bytes", len(msg)).Msg("hub: dropped a broadcast that is not a JSON object")
		return
	}
	f := frame{data: textFrame(msg)}
	h.do(func() {
		for c := range h.live[""] {
			h.push(c, f)
		}
	})
}

// Cached reports whether the hub holds stream's history from its first
// message on, or from the oldest one the log still had when Load ran: then
// a client of the stream needs no Load first. It is false after Run has
// returned.
func (h *Hub) Cached(stream string) bool {
	reply := make(chan bool, 1)
	h.do(func() {
		s := h.streams[stream]
		reply <- s != nil && (s.base == 1 || s.loaded || s.trimmed)
	})
	select {
	case ok := <-reply:
		return ok
	case <-h.done:
		return false
	}
}

// Stats are a hub's counters since NewHub.
type Stats struct {
	Frames     int64 // data frames written to clients (pongs included)
	Bytes      int64 // their bytes on the wire
	SlowCloses int64 // clients closed with CloseSlowClient
}

type stats struct{ frames, bytes, slow atomic.Int64 }

// Stats returns the hub's counters. Safe from any goroutine.
func (h *Hub) Stats() Stats {
	return Stats{Frames: h.stats.frames.Load(), Bytes: h.stats.bytes.Load(), SlowCloses: h.stats.slow.Load()}
}

// Clients returns the number of registered clients: connected, and neither
// stopped by the hub nor gone.
func (h *Hub) Clients() int { return int(h.count.Load()) }

// Serve upgrades the request and subscribes the client to sub. The caller
// has already checked auth, the connection cap and that the streams named
// exist; the Origin is checked here (Config.CheckOrigin, HTTP 403).
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, sub Subscription) {
	select {
	case <-h.done:
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		if sub.Left != nil {
			sub.Left()
		}
		return
	default:
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has already answered with an HTTP error.
		h.log.Debug().Err(err).Str("remote", r.RemoteAddr).Str("origin", r.Header.Get("Origin")).Msg("hub: upgrade refused")
		if sub.Left != nil {
			sub.Left()
		}
		return
	}
	c := newSubscriber(h, conn, sub)
	h.pumps.Add(1)
	select {
	case h.inbox <- func() { h.add(c) }:
		go c.writePump()
	case <-h.done:
		h.pumps.Done()
		conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, ReasonShutdown), time.Now().Add(closeGrace))
		conn.Close()
		if sub.Left != nil {
			sub.Left()
		}
	}
}

// stream returns stream id, creating it on first use.
func (h *Hub) stream(id string) *stream {
	s := h.streams[id]
	if s == nil {
		h.created++
		s = &stream{id: id, created: h.created, base: 1}
		h.streams[id] = s
		h.order = append(h.order, s)
	}
	return s
}

// appendFrame keeps f when it is the next seq (and then any pending ones it
// unblocks), delivering each to the live clients; it parks a later seq and
// drops an earlier one.
func (h *Hub) appendFrame(s *stream, f frame) {
	switch {
	case f.seq < s.next():
		return // a duplicate
	case f.seq > s.next():
		if len(s.frames) == 0 && len(s.pending) == 0 && s.base == 1 && !s.loaded {
			// The first message this hub sees of a stream that began before
			// it: start there; Load may bring the rest.
			s.base = f.seq
			break
		}
		if s.pending == nil {
			s.pending = make(map[uint64]frame)
		}
		if len(s.pending) < h.cfg.History {
			s.pending[f.seq] = f
		}
		return
	}
	for {
		h.keep(s, f)
		next, ok := s.pending[s.next()]
		if !ok {
			break
		}
		delete(s.pending, next.seq)
		f = next
	}
	h.enforceBudget()
}

// keep stores f, the stream's next seq, and delivers it.
func (h *Hub) keep(s *stream, f frame) {
	if h.cfg.OnAppend != nil {
		h.cfg.OnAppend(s.id, f.seq)
	}
	s.frames = append(s.frames, f)
	n := int64(len(f.data))
	s.bytes += n
	h.totalBytes += n
	if over := len(s.frames) - h.cfg.History; over > 0 {
		h.totalBytes -= s.dropOldest(over)
	}
	for s.bytes > h.cfg.StreamBytes && len(s.frames) > 1 {
		h.totalBytes -= s.dropOldest(1)
	}
	for c := range h.live[""] {
		h.push(c, f)
	}
	for c := range h.live[s.id] {
		h.push(c, f)
	}
	if f.terminal {
		s.ended, s.endedAt = true, time.Now()
		for c := range h.live[s.id] {
			h.finish(c, websocket.CloseNormalClosure, ReasonEnded)
		}
		h.evictEnded()
	}
}

// load merges frames read back from the log into stream id.
func (h *Hub) load(id string, frames []frame) {
	s := h.stream(id)
	s.loaded = true
	if len(frames) == 0 {
		return
	}
	if len(s.frames) == 0 && len(s.pending) == 0 {
		s.base = frames[0].seq // where the log's history starts
	}
	var older []frame
	for _, f := range frames {
		if f.seq >= s.base {
			break
		}
		older = append(older, f)
	}
	if len(older) > 0 && older[len(older)-1].seq+1 == s.base {
		var n int64
		for _, f := range older {
			n += int64(len(f.data))
		}
		// A new array: slices handed out of the old one stay valid.
		s.frames = append(older, s.frames...)
		s.base = older[0].seq
		s.bytes += n
		h.totalBytes += n
	}
	for _, f := range frames {
		if f.seq >= s.next() {
			h.appendFrame(s, f)
		}
	}
	h.enforceBudget()
}

// push queues f for a live client, unless the client did not ask for it,
// or closes the client as slow when its queue is full.
func (h *Hub) push(c *subscriber, f frame) {
	if !c.wants(f) {
		return
	}
	if c.out.push(f.data, h.cfg.SendQueue) {
		return
	}
	if h.finish(c, CloseSlowClient, ReasonSlowClient) {
		h.stats.slow.Add(1)
		c.log.Warn().Int("send_queue", h.cfg.SendQueue).Msg("hub: closing slow client")
	}
}

// finish unregisters c and stops it with a close frame; a normal close
// first writes everything c was handed, the others drop it. It reports
// whether c was still registered.
func (h *Hub) finish(c *subscriber, code int, reason string) bool {
	if !h.remove(c) {
		return false
	}
	h.closing[c] = struct{}{}
	c.stop(code, reason, code != CloseSlowClient)
	return true
}

// add registers c, decides where it starts in each stream, and hands it
// its first batch of history.
func (h *Hub) add(c *subscriber) {
	h.clients[c] = struct{}{}
	h.count.Add(1)
	c.joined = h.created
	for id, seq := range c.sub.Since {
		if c.sub.Stream == "" || id == c.sub.Stream {
			c.follow(id, seq)
		}
	}
	if c.sub.Stream != "" {
		c.follow(c.sub.Stream, 0)
	} else {
		for _, s := range h.order {
			if !s.ended {
				c.follow(s.id, 0)
			}
		}
	}
	slices.SortStableFunc(c.order, func(a, b string) int { return h.rank(a) - h.rank(b) })
	c.log.Debug().Str("stream", c.sub.Stream).Int("streams", len(c.order)).Msg("hub: client joined")
	h.catchUp(c)
}

// rank orders streams by creation; unknown ones go last.
func (h *Hub) rank(id string) int {
	if s := h.streams[id]; s != nil {
		return int(s.created)
	}
	return int(h.created) + 1
}

// catchUp hands c everything kept past its cursors as one batch of slices
// of the history, or, when there is nothing left, makes it live: from then
// on every new message is pushed onto its queue. A client of one stream
// that has ended is then closed normally instead.
func (h *Hub) catchUp(c *subscriber) {
	if _, ok := h.clients[c]; !ok {
		return // it left or was stopped
	}
	if c.sub.Stream == "" {
		// Streams that began since the client last looked.
		for _, s := range h.order {
			if s.created > c.joined {
				c.follow(s.id, 0)
			}
		}
		c.joined = h.created
	}
	var batch []segment
	for _, id := range c.order {
		s := h.streams[id]
		if s == nil {
			continue
		}
		cur := c.cursors[id]
		if cur+1 < s.base {
			batch = append(batch, segment{notice: gapNotice(id, cur+1, s.base-1)})
			cur = s.base - 1
		}
		if fs := s.after(cur); len(fs) > 0 {
			batch = append(batch, segment{frames: fs})
			cur = fs[len(fs)-1].seq
		}
		c.cursors[id] = cur
	}
	if len(batch) > 0 {
		c.batches <- batch // capacity 1, and the pump asks for one batch at a time
		return
	}
	if s := h.streams[c.sub.Stream]; c.sub.Stream != "" && s != nil && s.ended {
		h.finish(c, websocket.CloseNormalClosure, ReasonEnded)
		c.batches <- nil
		return
	}
	set := h.live[c.sub.Stream]
	if set == nil {
		set = make(map[*subscriber]struct{})
		h.live[c.sub.Stream] = set
	}
	set[c] = struct{}{}
	c.batches <- nil
}

// remove unregisters c, if it still is, and reports whether it was.
func (h *Hub) remove(c *subscriber) bool {
	if _, ok := h.clients[c]; !ok {
		return false
	}
	delete(h.clients, c)
	h.count.Add(-1)
	if set := h.live[c.sub.Stream]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.live, c.sub.Stream)
		}
	}
	return true
}

// left is the pump's word that c has ended.
func (h *Hub) left(c *subscriber) {
	h.remove(c)
	delete(h.closing, c)
}

// evictEnded drops the oldest ended streams beyond KeepEnded.
func (h *Hub) evictEnded() {
	n := 0
	for _, s := range h.order {
		if s.ended {
			n++
		}
	}
	for _, s := range h.order {
		if n <= h.cfg.KeepEnded {
			return
		}
		if s.ended {
			h.drop(s)
			n--
		}
	}
}

// enforceBudget keeps TotalBytes: ended streams go first, oldest first,
// then the oldest messages of the largest stream.
func (h *Hub) enforceBudget() {
	for h.totalBytes > h.cfg.TotalBytes {
		var victim, largest *stream
		for _, s := range h.order {
			if s.ended && victim == nil {
				victim = s
			}
			if len(s.frames) > 1 && (largest == nil || s.bytes > largest.bytes) {
				largest = s
			}
		}
		switch {
		case victim != nil:
			h.drop(victim)
		case largest != nil:
			h.totalBytes -= largest.dropOldest(max(1, len(largest.frames)/16))
		default:
			return
		}
	}
}

// drop forgets stream s; clients catching up keep the slices they hold.
func (h *Hub) drop(s *stream) {
	delete(h.streams, s.id)
	h.order = slices.DeleteFunc(h.order, func(o *stream) bool { return o == s })
	h.totalBytes -= s.bytes
}

// shutdown applies what is already handed in, closes every client with
// 1001 once it has written what it has, and waits for their goroutines,
// cutting the connections that have not finished their close handshake
// within closeGrace.
func (h *Hub) shutdown() {
	for drained := false; !drained; {
		select {
		case op := <-h.inbox:
			op()
		default:
			drained = true
		}
	}
	close(h.done)
	for c := range h.clients {
		c.stop(websocket.CloseGoingAway, ReasonShutdown, true)
	}
	finished := make(chan struct{})
	go func() {
		h.pumps.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(closeGrace):
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
	clear(h.live)
	clear(h.closing)
	h.log.Debug().Msg("hub: stopped")
}
