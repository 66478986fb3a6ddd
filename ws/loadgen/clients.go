package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
)

// wsClient is one healthy /ws client: it parses every frame and notes when
// each seq of the run arrived.
type wsClient struct {
	conn   *websocket.Conn
	run    string
	recv   []uint32 // µs after the epoch at which seq i arrived; 0: not yet
	frames int
	dups   int // a seq received twice
	order  int // a seq received before a smaller one
	others int // frames of another run
	last   uint64
	err    error
	done   bool // got the terminal message
	doneAt time.Time
}

// frame is what a client reads of each message: all of it is parsed.
type frame struct {
	Type   string `json:"type"`
	Status string `json:"status"`
	RunID  string `json:"run_id"`
	Seq    uint64 `json:"seq"`
}

func (f frame) terminal() bool {
	return f.Type == "training_complete" || f.Type == "training_error"
}

// read reads until the run's terminal message or an error. Each frame is
// read into a reused buffer and checked whole as JSON (json.Valid, every
// byte); its type, run_id and seq are then read where the schema and the
// log's envelope put them. Cheaper than decoding every field, so that the
// generator, on the server's machine, takes less of the CPU it measures.
func (c *wsClient) read(epoch time.Time, deadline time.Time) {
	c.conn.SetReadDeadline(deadline)
	var buf bytes.Buffer
	for {
		_, r, err := c.conn.NextReader()
		if err != nil {
			c.err = err
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			c.err = err
			return
		}
		at := uint32(time.Since(epoch) / time.Microsecond)
		b := buf.Bytes()
		f, ok := scanFrame(b)
		if !ok {
			c.err = fmt.Errorf("a frame that is not an enveloped JSON object: %.80q", b)
			return
		}
		c.frames++
		if c.run == "" {
			c.run = f.RunID
		}
		if f.RunID != c.run {
			c.others++
			continue
		}
		for uint64(len(c.recv)) <= f.Seq {
			c.recv = append(c.recv, 0)
		}
		switch {
		case c.recv[f.Seq] != 0:
			c.dups++
		case f.Seq < c.last:
			c.order++
		}
		c.recv[f.Seq] = max(at, 1)
		c.last = max(c.last, f.Seq)
		if f.terminal() {
			c.done, c.doneAt = true, time.Now()
			return
		}
	}
}

// scanFrame checks that b is one JSON object and reads its "type" (the
// first field of every schema message), and the "run_id" and "seq" the
// log's envelope appends last.
func scanFrame(b []byte) (frame, bool) {
	if !json.Valid(b) || len(b) < 2 || b[0] != '{' {
		return frame{}, false
	}
	var f frame
	if rest, ok := bytes.CutPrefix(b, []byte(`{"type":"`)); ok {
		if i := bytes.IndexByte(rest, '"'); i >= 0 {
			f.Type = string(rest[:i])
		}
	}
	i := bytes.LastIndex(b, []byte(`,"run_id":"`))
	if i < 0 {
		return f, false
	}
	tail := b[i+len(`,"run_id":"`):]
	j := bytes.IndexByte(tail, '"')
	if j < 0 {
		return f, false
	}
	f.RunID = string(tail[:j])
	tail, ok := bytes.CutPrefix(tail[j+1:], []byte(`,"seq":`))
	if !ok {
		return f, false
	}
	for _, d := range tail {
		if d < '0' || d > '9' {
			break
		}
		f.Seq = f.Seq*10 + uint64(d-'0')
	}
	return f, f.Seq > 0
}

// dialAll opens n connections to url, workers at a time; slow ones get a
// 4 KiB receive buffer, so that not reading stalls the server's writes as
// a slow link would.
func dialAll(ctx context.Context, url string, n int, slow bool) ([]*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 512}
	if slow {
		d.NetDialContext = (&net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			return serr
		}}).DialContext
	}
	conns := make([]*websocket.Conn, n)
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range min(n, dialWorkers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || first.Load() != nil || ctx.Err() != nil {
					return
				}
				c, resp, err := d.DialContext(ctx, url, nil)
				if err != nil {
					if resp != nil {
						err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
					}
					first.CompareAndSwap(nil, fmt.Errorf("connection %d of %d: %w", i+1, n, err))
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, ctx.Err()
}

const dialWorkers = 32

func closeAll(conns []*websocket.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// drainSlow reads what a stalled client's socket holds, after the run,
// until the connection ends: it returns the close code, 0 when the server
// cut the connection without a close frame (the socket was full when it
// tried), -1 when the connection is still open at deadline.
func drainSlow(c *websocket.Conn, deadline time.Time) int {
	c.SetReadDeadline(deadline)
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			var ne net.Error
			switch {
			case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
				return 0 // gorilla's name for an EOF with no close frame
			case errors.As(err, &ce):
				return ce.Code
			case errors.As(err, &ne) && ne.Timeout():
				return -1
			}
			return 0
		}
	}
}

// reference records when each seq of every run was appended to the log:
// it subscribes to the runs' subject on the server's NATS. The header is
// the log's wire contract (runlog: Kairo-Seq).
type reference struct {
	nc     *nats.Conn
	mu     sync.Mutex
	at     map[string]map[uint64]uint32 // run → seq → µs after the epoch
	deltas map[string]map[uint64]bool   // run → seqs a plain client is not sent (prediction_delta)
}

func subscribe(url string, epoch time.Time) (*reference, error) {
	nc, err := nats.Connect(url, nats.Name("kairoscope loadgen"), nats.Timeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connecting to the server's NATS at %s: %w", url, err)
	}
	r := &reference{nc: nc, at: map[string]map[uint64]uint32{}, deltas: map[string]map[uint64]bool{}}
	_, err = nc.Subscribe("kairo.ev.>", func(m *nats.Msg) {
		at := uint32(time.Since(epoch) / time.Microsecond)
		seq, err := strconv.ParseUint(m.Header.Get("Kairo-Seq"), 10, 64)
		if err != nil {
			return
		}
		run := m.Subject[len("kairo.ev."):]
		r.mu.Lock()
		if r.at[run] == nil {
			r.at[run] = map[uint64]uint32{}
		}
		if _, ok := r.at[run][seq]; !ok {
			r.at[run][seq] = max(at, 1)
		}
		if bytes.HasPrefix(m.Data, []byte(`{"type":"prediction_delta"`)) {
			if r.deltas[run] == nil {
				r.deltas[run] = map[uint64]bool{}
			}
			r.deltas[run][seq] = true
		}
		r.mu.Unlock()
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return r, nil
}

// of returns run's append times, and the seqs a plain client skips.
func (r *reference) of(run string) (map[uint64]uint32, map[uint64]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at[run], r.deltas[run]
}

// predictResult is what one /ws/predict client saw.
type predictResult struct {
	status   int    // HTTP status of a refused handshake, 101 when upgraded
	id       string // the forecast it joined
	output   bool
	errMsg   string
	closeErr error // how the connection ended after output: want a normal close
	err      error
}

// predict connects one /ws/predict client and follows its forecast to the
// end and the close.
func predict(ctx context.Context, url string, deadline time.Time) predictResult {
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	c, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			return predictResult{status: resp.StatusCode}
		}
		return predictResult{err: err}
	}
	defer c.Close()
	r := predictResult{status: http.StatusSwitchingProtocols}
	c.SetReadDeadline(deadline)
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			if r.output || r.errMsg != "" {
				r.closeErr = err
			} else {
				r.err = err
			}
			return r
		}
		var f struct {
			frame
			Message string `json:"message"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			r.err = fmt.Errorf("a frame that is not JSON: %.80q", b)
			return r
		}
		if f.RunID != "" {
			r.id = f.RunID
		}
		switch f.Status {
		case "output":
			r.output = true
		case "error":
			r.errMsg = f.Message
		}
	}
}
