package hub

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// outboxKeep is the largest queue array a client keeps between bursts;
// bigger ones are released so that an idle connection holds almost nothing.
const outboxKeep = 16

// pongFrame answers a client's text "ping". Every frame is one JSON object:
// the seed's JavaScript client JSON.parses each one.
var pongFrame = textFrame([]byte(`{"type":"pong"}`))

// A write pump hands at most writeFrames frames, or writeBytes bytes
// (unless one frame is bigger), to one system call.
const (
	writeFrames = 64
	writeBytes  = 256 << 10
)

// errStopped ends the write pump because the client was stopped.
var errStopped = errors.New("hub: client stopped")

// segment is one piece of a catch-up batch: a slice of a stream's kept
// history (shared, never written), or one notice frame.
type segment struct {
	frames []frame
	notice []byte
}

// subscriber is one connection. Its read pump is the connection's only
// reader and its write pump the only writer of data and control frames
// (the read pump hands pongs to it), so nothing else moves the socket's
// write deadline under a write in flight.
//
// Lifetime: Serve counts it and hands it to Run, which registers it and
// hands it its first batch; the write pump starts the read pump. The write
// pump catches up batch by batch, asking Run for the next one after
// writing each, until Run makes it live; then it writes its queue. Whoever
// ends first calls stop. The write pump always ends last: it waits for the
// read pump, closes the socket and tells Run.
type subscriber struct {
	hub  *Hub
	conn *websocket.Conn
	sub  Subscription
	log  zerolog.Logger

	// Owned by Run.
	cursors map[string]uint64 // last seq handed over, by stream
	order   []string          // streams followed, in the order written
	joined  uint64            // Hub.created at the last catch-up

	batches  chan []segment // capacity 1: Run's answer to one catch-up request; nil: live
	out      outbox
	bufs     net.Buffers   // the write pump's scratch for one writev
	pongs    chan []byte   // capacity 1: a pong payload owed to the peer
	textPong chan struct{} // capacity 1: a {"type":"pong"} is owed

	stopOnce    sync.Once
	done        chan struct{} // closed by stop
	closeCode   int           // 0: no close frame from us; valid once done is closed
	closeReason string
	flush       bool          // write everything handed over before closing
	readDone    chan struct{} // closed when the read pump has ended
}

func newSubscriber(h *Hub, conn *websocket.Conn, sub Subscription) *subscriber {
	return &subscriber{
		hub:      h,
		conn:     conn,
		sub:      sub,
		log:      h.log.With().Str("remote", conn.RemoteAddr().String()).Logger(),
		cursors:  make(map[string]uint64),
		batches:  make(chan []segment, 1),
		out:      outbox{ready: make(chan struct{}, 1)},
		pongs:    make(chan []byte, 1),
		textPong: make(chan struct{}, 1),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
}

// follow starts following stream id after seq, unless it already does.
// Run only.
func (c *subscriber) follow(id string, seq uint64) {
	if _, ok := c.cursors[id]; ok {
		return
	}
	c.cursors[id] = seq
	c.order = append(c.order, id)
}

// wants reports whether the client asked for f.
func (c *subscriber) wants(f frame) bool {
	switch f.kind {
	case kindDelta:
		return c.sub.Deltas == DeltasAll
	case kindFinal:
		return c.sub.Deltas != DeltasNone
	}
	return true
}

// stop asks the write pump to end, with a close frame of code and reason
// unless code is 0. With flush it first writes everything it was handed;
// without, it drops that. Only the first call counts; it reports whether it
// was the first. Safe from any goroutine.
func (c *subscriber) stop(code int, reason string, flush bool) bool {
	first := false
	c.stopOnce.Do(func() {
		c.closeCode, c.closeReason, c.flush = code, reason, flush
		close(c.done)
		first = true
	})
	return first
}

// abandoned reports whether the frames not yet written should be dropped:
// the client was stopped without flush.
func (c *subscriber) abandoned() bool {
	select {
	case <-c.done:
		return !c.flush
	default:
		return false
	}
}

// readPump reads until the peer goes away. It answers text "ping" and
// protocol pings through the write pump, ignores every other message, and
// keeps the read deadline PongWait ahead of the last frame or pong.
func (c *subscriber) readPump() {
	defer close(c.readDone)
	cfg := c.hub.cfg
	c.conn.SetReadLimit(cfg.MaxMessageBytes)
	c.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
	})
	// gorilla's own ping handler writes the pong from this goroutine with a
	// one-second deadline, which would cut a long batch the write pump is
	// writing; the write pump sends it instead.
	c.conn.SetPingHandler(func(payload string) error {
		select {
		case c.pongs <- []byte(payload):
		default: // one pong is owed already; it answers this ping too
		}
		return c.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
	})
	for {
		typ, msg, err := c.conn.ReadMessage()
		if err != nil {
			// gorilla has already answered a close frame, an oversize
			// message (1009) or a protocol error (1002); a timeout or a
			// broken socket gets no close frame.
			c.stop(0, "", false)
			if errors.Is(err, websocket.ErrReadLimit) {
				c.drain()
			}
			// The peer is gone or closing: unblock a write pump stuck on
			// it now rather than after WriteWait.
			c.conn.Close()
			c.log.Debug().Err(err).Msg("hub: client left")
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
		if typ == websocket.TextMessage && string(bytes.TrimSpace(msg)) == "ping" {
			select {
			case c.textPong <- struct{}{}:
			default: // one pong is already owed; pings arrive every 30 s
			}
			continue
		}
		c.log.Debug().Int("type", typ).Int("bytes", len(msg)).Msg("hub: ignored a client message")
	}
}

// drain discards input until the peer closes or closeGrace passes.
// Closing a socket with unread input makes TCP send a reset, which can
// destroy the close frame still in flight; after an oversize message the
// rest of it is still unread.
func (c *subscriber) drain() {
	nc := c.conn.NetConn()
	nc.SetReadDeadline(time.Now().Add(closeGrace))
	io.Copy(io.Discard, nc)
}

// writePump writes the prelude, the catch-up batches, then queued frames,
// pongs and pings, until the client is stopped or a write fails; then it
// closes the connection and tells Run.
func (c *subscriber) writePump() {
	defer c.hub.pumps.Done()
	if c.sub.Left != nil {
		defer c.sub.Left() // before Run can return
	}
	defer c.hub.do(func() { c.hub.left(c) })
	go c.readPump()
	ticker := time.NewTicker(c.hub.cfg.pingPeriod())
	defer ticker.Stop()

	err := c.writeAll(ticker.C)
	if err == errStopped {
		err = nil
	}
	if err == nil && c.closeCode != 0 {
		err = c.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(c.closeCode, c.closeReason), time.Now().Add(closeGrace))
	}
	if err == nil {
		// Let the read pump finish first: it ends on the peer's answer to
		// our close frame, or after draining (see drain), so that closing
		// the socket cannot overtake a close frame in flight.
		t := time.NewTimer(closeGrace)
		select {
		case <-c.readDone:
		case <-t.C:
		}
		t.Stop()
	} else {
		c.log.Debug().Err(err).Msg("hub: write failed")
	}
	c.conn.Close()
	<-c.readDone
}

// writeAll returns errStopped or nil once the client is stopped, or the
// first write error.
func (c *subscriber) writeAll(tick <-chan time.Time) error {
	if len(c.sub.Prelude) > 0 {
		frames := make([][]byte, len(c.sub.Prelude))
		for i, p := range c.sub.Prelude {
			frames[i] = textFrame(p)
		}
		if err := c.writeBatch(frames, tick); err != nil {
			return err
		}
	}
	if err := c.catchUp(tick); err != nil {
		return err
	}
	var batch [][]byte
	for {
		select {
		case <-c.done:
			if c.flush {
				return c.writeBatch(c.out.take(batch), nil)
			}
			return nil
		case <-tick:
			if err := c.ping(); err != nil {
				return err
			}
		case p := <-c.pongs:
			if err := c.pong(p); err != nil {
				return err
			}
		case <-c.textPong:
			if err := c.writeFrames([][]byte{pongFrame}); err != nil {
				return err
			}
		case <-c.out.ready:
			batch = c.out.take(batch)
			if err := c.writeBatch(batch, tick); err != nil {
				return err
			}
			clear(batch) // let written frames be collected
			if cap(batch) > outboxKeep {
				batch = nil
			}
			batch = batch[:0]
		}
	}
}

// catchUp writes the history Run hands over, batch by batch, until Run
// answers that the client is live (or stopped it).
func (c *subscriber) catchUp(tick <-chan time.Time) error {
	var frames [][]byte
	for {
		select {
		case <-c.done:
			return nil // writeAll's loop flushes or drops the queue
		case b := <-c.batches:
			if b == nil {
				return nil
			}
			for _, seg := range b {
				frames = frames[:0]
				if seg.notice != nil {
					frames = append(frames, seg.notice)
				}
				for _, f := range seg.frames {
					if c.wants(f) {
						frames = append(frames, f.data)
					}
				}
				if err := c.writeBatch(frames, tick); err != nil {
					return err
				}
			}
			clear(frames)
			c.hub.do(func() { c.hub.catchUp(c) })
		}
	}
}

// writeBatch writes frames in order, several per system call, stopping
// early only when the client is stopped without flush. Pings and pongs
// stay on time during a long catch-up.
func (c *subscriber) writeBatch(frames [][]byte, tick <-chan time.Time) error {
	for len(frames) > 0 {
		if c.abandoned() {
			return errStopped
		}
		if err := c.controlIfDue(tick); err != nil {
			return err
		}
		n, size := 1, len(frames[0])
		for n < len(frames) && n < writeFrames && size+len(frames[n]) <= writeBytes {
			size += len(frames[n])
			n++
		}
		if err := c.writeFrames(frames[:n]); err != nil {
			return err
		}
		frames = frames[n:]
	}
	return nil
}

// controlIfDue sends a ping or a pong that is due.
func (c *subscriber) controlIfDue(tick <-chan time.Time) error {
	select {
	case <-tick:
		return c.ping()
	case p := <-c.pongs:
		return c.pong(p)
	default:
		return nil
	}
}

func (c *subscriber) ping() error {
	return c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.hub.cfg.WriteWait))
}

func (c *subscriber) pong(payload []byte) error {
	return c.conn.WriteControl(websocket.PongMessage, payload, time.Now().Add(c.hub.cfg.WriteWait))
}

// writeFrames writes whole frames (textFrame's) in one writev within
// WriteWait, straight to the socket. Only the write pump writes, so the
// socket's write deadline is its own.
func (c *subscriber) writeFrames(frames [][]byte) error {
	nc := c.conn.NetConn()
	nc.SetWriteDeadline(time.Now().Add(c.hub.cfg.WriteWait))
	// WriteTo consumes the slice it is given, so give it a copy: frames
	// may be the hub's history.
	c.bufs = append(c.bufs[:0], frames...)
	bufs := c.bufs
	n, err := bufs.WriteTo(nc)
	c.hub.stats.frames.Add(int64(len(frames)))
	c.hub.stats.bytes.Add(n)
	clear(c.bufs) // let written frames be collected
	return err
}

// outbox is a client's bounded FIFO of frames: the hub pushes, the write
// pump takes. Neither side ever waits for the other beyond a short lock.
// Its storage grows on demand, so an idle connection holds almost none.
type outbox struct {
	mu     sync.Mutex
	frames [][]byte
	ready  chan struct{} // capacity 1: a token means frames may be non-empty
}

// push appends f unless limit frames are already waiting, and reports
// whether it did.
func (o *outbox) push(f []byte, limit int) bool {
	o.mu.Lock()
	if len(o.frames) >= limit {
		o.mu.Unlock()
		return false
	}
	o.frames = append(o.frames, f)
	o.mu.Unlock()
	select {
	case o.ready <- struct{}{}:
	default: // the write pump is already told
	}
	return true
}

// take returns every waiting frame, in order, and leaves the queue empty,
// reusing spare's array for it.
func (o *outbox) take(spare [][]byte) [][]byte {
	o.mu.Lock()
	out := o.frames
	o.frames = spare[:0]
	o.mu.Unlock()
	return out
}
