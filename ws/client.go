package ws

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

// hubOutboxKeep is the largest queue array a client keeps between bursts;
// bigger ones are released so that an idle connection holds almost nothing.
const hubOutboxKeep = 16

// hubPongFrame answers a client's text "ping". Every frame on /ws is one JSON
// object: the seed's JavaScript client JSON.parses each one.
var hubPongFrame = textFrame([]byte(`{"type":"pong"}`))

// A write pump hands at most hubWriteFrames frames, or hubWriteBytes bytes
// (unless one frame is bigger), to one system call.
const (
	hubWriteFrames = 64
	hubWriteBytes  = 256 << 10
)

// errSubscriberStopped ends the write pump because the client was stopped.
var errSubscriberStopped = errors.New("ws: client stopped")

// subscriber is one /ws connection. Its read pump is the connection's only
// reader and its write pump the only writer; gorilla allows Close and
// WriteControl beside them (the read pump closes a connection whose peer is
// gone, Run cuts the ones left at shutdown).
//
// Lifetime: Run registers it and starts the write pump, which starts the read
// pump. Whoever ends first calls stop. When the server closes (slow client,
// finished run, shutdown), the write pump sends the close frame and the read
// pump ends on the peer's answer; when the peer leaves, the read pump ends
// first and closes the socket. The write pump always ends last: it waits for
// the read pump, closes the socket and reports to Run's WaitGroup.
type subscriber struct {
	hub   *Hub
	conn  *websocket.Conn
	runID string // "" subscribes to every run
	log   zerolog.Logger

	// replay is the history to write before anything queued. Run sets it
	// before starting the write pump, which then owns it.
	replay [][]hubFrame
	full   bool // ?deltas=all: whole messages, never Config.Abridge's stand-ins
	out    hubOutbox
	bufs   net.Buffers   // the write pump's scratch for one writev
	pong   chan struct{} // capacity 1: a {"type":"pong"} is owed

	stopOnce    sync.Once
	done        chan struct{} // closed by stop
	closeCode   int           // 0: no close frame from us; valid once done is closed
	closeReason string
	flush       bool          // write everything handed over before closing
	readDone    chan struct{} // closed when the read pump has ended
}

func newSubscriber(h *Hub, conn *websocket.Conn, runID string) *subscriber {
	return &subscriber{
		hub:      h,
		conn:     conn,
		runID:    runID,
		log:      h.log.With().Str("remote", conn.RemoteAddr().String()).Logger(),
		out:      hubOutbox{ready: make(chan struct{}, 1)},
		pong:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
}

// stop asks the write pump to end, with a close frame of code and reason
// unless code is 0. With flush it first writes everything it was handed
// (replay and queue); without, it drops that. Only the first call counts; it
// reports whether it was the first. Safe from any goroutine.
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

// readPump reads until the peer goes away. It answers text "ping" through
// the write pump, ignores every other message, and keeps the read deadline
// PongWait ahead of the last frame or pong received.
func (c *subscriber) readPump() {
	defer close(c.readDone)
	cfg := c.hub.cfg
	c.conn.SetReadLimit(cfg.MaxMessageBytes)
	c.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
	c.conn.SetPongHandler(func(string) error {
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
			c.log.Debug().Err(err).Msg("ws: client left")
			break
		}
		c.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
		if typ == websocket.TextMessage && string(bytes.TrimSpace(msg)) == "ping" {
			select {
			case c.pong <- struct{}{}:
			default: // one pong is already owed; pings arrive every 30 s
			}
			continue
		}
		c.log.Debug().Int("type", typ).Int("bytes", len(msg)).Msg("ws: ignored a client message")
	}
	select {
	case c.hub.unregister <- c:
	case <-c.hub.done:
	}
}

// drain discards input until the peer closes or hubCloseGrace passes.
// Closing a socket with unread input makes TCP send a reset, which can
// destroy the close frame still in flight; after an oversize message the rest
// of it is still unread.
func (c *subscriber) drain() {
	nc := c.conn.NetConn()
	nc.SetReadDeadline(time.Now().Add(hubCloseGrace))
	io.Copy(io.Discard, nc)
}

// writePump writes the replay, then queued frames, pongs and pings, until the
// client is stopped or a write fails; then it closes the connection.
func (c *subscriber) writePump() {
	defer c.hub.pumps.Done()
	go c.readPump()
	ticker := time.NewTicker(c.hub.cfg.pingPeriod())
	defer ticker.Stop()

	err := c.writeAll(ticker.C)
	if err == errSubscriberStopped {
		err = nil
	}
	if err == nil && c.closeCode != 0 {
		err = c.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(c.closeCode, c.closeReason),
			time.Now().Add(hubCloseGrace))
	}
	if err == nil {
		// Let the read pump finish first: it ends on the peer's answer to
		// our close frame, or after draining (see drain), so that closing
		// the socket cannot overtake a close frame in flight.
		t := time.NewTimer(hubCloseGrace)
		select {
		case <-c.readDone:
		case <-t.C:
		}
		t.Stop()
	} else {
		c.log.Debug().Err(err).Msg("ws: write failed")
	}
	c.conn.Close()
	<-c.readDone
}

// writeAll returns errSubscriberStopped or nil once the client is stopped, or the
// first write error.
func (c *subscriber) writeAll(tick <-chan time.Time) error {
	// History first, straight from the snapshot: it never passes through the
	// bounded queue, so any length of it fits.
	var frames [][]byte
	for _, snapshot := range c.replay {
		frames = frames[:0]
		for _, f := range snapshot {
			frames = append(frames, f.frameFor(c))
		}
		if err := c.writeBatch(frames, tick); err != nil {
			return err
		}
	}
	c.replay = nil

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
		case <-c.pong:
			if err := c.writeFrames([][]byte{hubPongFrame}); err != nil {
				return err
			}
		case <-c.out.ready:
			batch = c.out.take(batch)
			if err := c.writeBatch(batch, tick); err != nil {
				return err
			}
			clear(batch) // let written frames be collected
			if cap(batch) > hubOutboxKeep {
				batch = nil
			}
			batch = batch[:0]
		}
	}
}

// writeBatch writes frames in order, several per system call, stopping
// early only when the client is stopped without flush. Pings stay on time
// during a long replay.
func (c *subscriber) writeBatch(frames [][]byte, tick <-chan time.Time) error {
	for len(frames) > 0 {
		if c.abandoned() {
			return errSubscriberStopped
		}
		if err := c.pingIfDue(tick); err != nil {
			return err
		}
		n, size := 1, len(frames[0])
		for n < len(frames) && n < hubWriteFrames && size+len(frames[n]) <= hubWriteBytes {
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

func (c *subscriber) pingIfDue(tick <-chan time.Time) error {
	select {
	case <-tick:
		return c.ping()
	default:
		return nil
	}
}

func (c *subscriber) ping() error {
	return c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.hub.cfg.WriteWait))
}

// writeFrames writes whole frames (textFrame's) in one writev within
// WriteWait, straight to the socket. Only the write pump writes data, and
// gorilla's control frames (pings, pongs, close) go out in single Write
// calls, which the socket never interleaves with a writev.
func (c *subscriber) writeFrames(frames [][]byte) error {
	nc := c.conn.NetConn()
	nc.SetWriteDeadline(time.Now().Add(c.hub.cfg.WriteWait))
	// WriteTo consumes the slice it is given, so give it a copy: frames
	// may be the hub's history.
	c.bufs = append(c.bufs[:0], frames...)
	bufs := c.bufs
	_, err := bufs.WriteTo(nc)
	clear(c.bufs) // let written frames be collected
	return err
}

// hubOutbox is a client's bounded FIFO of frames: the hub pushes, the write
// pump takes. Neither side ever waits for the other beyond a short lock. Its
// storage grows on demand, so an idle connection holds almost none.
type hubOutbox struct {
	mu     sync.Mutex
	frames [][]byte
	ready  chan struct{} // capacity 1: a token means frames may be non-empty
}

// push appends f unless limit frames are already waiting, and reports
// whether it did.
func (o *hubOutbox) push(f []byte, limit int) bool {
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
func (o *hubOutbox) take(spare [][]byte) [][]byte {
	o.mu.Lock()
	out := o.frames
	o.frames = spare[:0]
	o.mu.Unlock()
	return out
}
