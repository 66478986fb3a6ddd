package hubload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// clientBuffer is each connection's read buffer; a message's payload is
	// then copied whole into the client's own buffer and parsed.
	clientBuffer = 4 << 10

	// maxMessage bounds one message a client accepts (a prediction_delta
	// with every row is about 14 KB).
	maxMessage = 16 << 20

	// dialWorkers is how many handshakes are in flight at once.
	dialWorkers = 16
)

// Clients is the clients process: `hubload clients -addr HOST:PORT -n N`.
// It opens N WebSocket connections to ws://addr/ws with no query, as the
// seed's clients connect (every run in progress, no prediction_delta),
// prints Connected, reads one Expect line from stdin, waits for every
// client to have every message a plain client gets, prints a
// ClientsReport and exits, closing the connections.
//
// The clients speak raw RFC 6455 frames. Each reads a whole message,
// stamps time.Now().UnixNano() once its last byte is in, then parses all
// of it as a JSON object (parse), as the seed's clients do with
// JSON.parse or json.loads, and takes its "seq".
func Clients(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hubload clients", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "the server's host:port (required)")
	n := fs.Int("n", 1000, "connections")
	profile := fs.String("cpuprofile", "", "write a CPU profile, from the last handshake to the report, to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || *n < 1 {
		return errors.New("hubload clients: -addr and -n ≥ 1 are required")
	}
	start := time.Now()
	cs, err := dialAll(ctx, *addr, *n)
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.conn.Close()
			}
		}
	}()
	if err != nil {
		return err
	}
	stop, err := startProfile(*profile)
	if err != nil {
		return err
	}
	defer stop()
	var wg sync.WaitGroup
	cs[0].bytes = map[uint64]int{} // one client says how big each seq was
	for _, c := range cs {
		wg.Go(c.read)
	}
	out := json.NewEncoder(stdout)
	if err := out.Encode(Connected{Clients: *n, DialSeconds: time.Since(start).Seconds()}); err != nil {
		return err
	}

	var exp Expect
	if err := json.NewDecoder(stdin).Decode(&exp); err != nil {
		return fmt.Errorf("hubload clients: reading what to expect: %w", err)
	}
	want := 0
	for _, t := range exp.Published.Types {
		if plainGets(t) {
			want++
		}
	}
	deadline := time.Now().Add(time.Duration(exp.TimeoutSeconds * float64(time.Second)))
	for _, c := range cs {
		for c.count.Load() < int64(want) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
	}
	for _, c := range cs {
		c.conn.Close() // ends every reader; what they have is final
	}
	wg.Wait()
	return out.Encode(report(cs, exp.Published))
}

// client is one connection and what it received, in order.
type client struct {
	conn  net.Conn
	br    *bufio.Reader
	msg   []byte       // the message being read, reused
	count atomic.Int64 // len(seqs), readable while read runs

	seqs   []uint64
	at     []int64 // UnixNano when each message's last byte was read
	others int64   // messages without a seq
	// bytes, when not nil, records each seq's payload size.
	bytes map[uint64]int
	err   error // what ended read
}

func dialAll(ctx context.Context, addr string, n int) ([]*client, error) {
	cs := make([]*client, n)
	next := atomic.Int64{}
	errs := make(chan error, dialWorkers)
	var wg sync.WaitGroup
	for range dialWorkers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				c, err := dial(ctx, addr)
				if err != nil {
					errs <- fmt.Errorf("hubload clients: client %d: %w", i, err)
					return
				}
				cs[i] = c
			}
		})
	}
	wg.Wait()
	close(errs)
	return cs, <-errs
}

// dial opens one connection to /ws and does the opening handshake.
func dial(ctx context.Context, addr string) (*client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	// The key is any 16 bytes in base64 ("kairoscope-load!"); the answer is
	// not checked beyond its status.
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: a2Fpcm9zY29wZS1sb2FkIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, clientBuffer)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	conn.SetDeadline(time.Time{})
	return &client{conn: conn, br: br}, nil
}

// read reads messages until the connection ends, parsing each and noting
// its seq and arrival time. A message that is not a JSON object ends it
// with an error, as it would break the seed's clients.
func (c *client) read() {
	for {
		msg, at, err := c.next()
		if err != nil {
			c.err = err
			return
		}
		m, err := parse(msg)
		if err != nil {
			c.err = err
			return
		}
		if m.Seq == 0 {
			c.others++
			continue
		}
		seq := m.Seq
		if c.bytes != nil {
			c.bytes[seq] = len(msg)
		}
		c.seqs = append(c.seqs, seq)
		c.at = append(c.at, at)
		c.count.Add(1)
	}
}

// next returns the next text message, whole, and when its last byte was
// read (UnixNano). It answers pings and returns io.EOF at a close frame.
// The slice is valid until the next call.
func (c *client) next() ([]byte, int64, error) {
	c.msg = c.msg[:0]
	for {
		fin, op, n, err := c.frameHeader()
		if err != nil {
			return nil, 0, err
		}
		switch op {
		case 0x8: // close
			return nil, 0, io.EOF
		case 0x9: // ping: answer with a masked pong of the same payload
			p := make([]byte, n)
			if _, err := io.ReadFull(c.br, p); err != nil {
				return nil, 0, err
			}
			if err := c.pong(p); err != nil {
				return nil, 0, err
			}
			continue
		case 0xA: // pong
			if _, err := c.br.Discard(int(n)); err != nil {
				return nil, 0, err
			}
			continue
		case 0x1: // a text message starts
			c.msg = c.msg[:0]
		}
		if uint64(len(c.msg))+n > maxMessage {
			return nil, 0, fmt.Errorf("a message over %d bytes", maxMessage)
		}
		k := len(c.msg)
		c.msg = slices.Grow(c.msg, int(n))[:k+int(n)]
		if _, err := io.ReadFull(c.br, c.msg[k:]); err != nil {
			return nil, 0, err
		}
		if fin {
			return c.msg, time.Now().UnixNano(), nil
		}
	}
}

// message is what a client takes from each message it parses.
type message struct {
	Type  string `json:"type"`
	RunID string `json:"run_id"`
	Seq   uint64 `json:"seq"`
}

// parse parses msg whole as one JSON object: encoding/json checks every
// byte of it before decoding (as JSON.parse or json.loads would refuse a
// bad one), then decodes type, run_id and seq and skips the other
// values. Decoding every value into a map[string]any instead costs 2.4×
// the CPU (15 against 6.4 µs for an epoch_metrics, measured here), and
// the clients' CPU is part of every latency figure: one core reads for all
// 1,000 of them.
func parse(msg []byte) (message, error) {
	var m message
	if b := bytes.TrimLeft(msg, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return m, fmt.Errorf("a message that is not a JSON object: %.80q", msg)
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return m, fmt.Errorf("a message that is not a JSON object (%v): %.80q", err, msg)
	}
	return m, nil
}

// frameHeader reads a frame's header: FIN, opcode and payload length. The
// server's frames are never masked.
func (c *client) frameHeader() (fin bool, op byte, n uint64, err error) {
	var h [8]byte
	if _, err = io.ReadFull(c.br, h[:2]); err != nil {
		return
	}
	fin, op, n = h[0]&0x80 != 0, h[0]&0x0F, uint64(h[1]&0x7F)
	if h[1]&0x80 != 0 {
		return fin, op, n, errors.New("a masked frame from the server")
	}
	switch n {
	case 126:
		if _, err = io.ReadFull(c.br, h[:2]); err == nil {
			n = uint64(binary.BigEndian.Uint16(h[:2]))
		}
	case 127:
		if _, err = io.ReadFull(c.br, h[:8]); err == nil {
			n = binary.BigEndian.Uint64(h[:8])
		}
	}
	return
}

// pong writes a masked pong frame (a client's frames must be masked; a zero
// mask leaves the payload as it is).
func (c *client) pong(p []byte) error {
	frame := append([]byte{0x8A, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...)
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(frame)
	return err
}

// report compares what each client received with what was published.
func report(cs []*client, pub Published) *ClientsReport {
	n := len(pub.At)
	r := &ClientsReport{Clients: len(cs), Messages: n, Types: make([]string, n), Bytes: make([]int, n), LatencyUS: make([][]int64, n)}
	expected := make([]bool, n)
	for i := range r.LatencyUS {
		if i < len(pub.Types) {
			r.Types[i] = pub.Types[i]
		}
		expected[i] = plainGets(r.Types[i])
		if expected[i] {
			r.Expected++
		}
		r.LatencyUS[i] = make([]int64, len(cs))
		for j := range r.LatencyUS[i] {
			r.LatencyUS[i][j] = -1
		}
	}
	for j, c := range cs {
		prev := uint64(0)
		r.Others += c.others
		for k, seq := range c.seqs {
			if seq <= prev {
				r.OutOfOrder++
			}
			prev = max(prev, seq)
			if seq > uint64(n) || r.LatencyUS[seq-1][j] >= 0 {
				continue // not published, or a duplicate
			}
			r.LatencyUS[seq-1][j] = (c.at[k] - pub.At[seq-1]) / 1e3
			if expected[seq-1] {
				r.Received++
			} else {
				r.Unexpected++
			}
		}
	}
	for seq, b := range cs[0].bytes {
		if seq >= 1 && seq <= uint64(n) {
			r.Bytes[seq-1] = b
		}
	}
	r.Lost = int64(len(cs))*int64(r.Expected) - r.Received
	return r
}
