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
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// clientBuffer is each connection's read buffer. Frames are read
	// through it, only their first clientHead and last clientTail bytes
	// kept, so a connection costs this much whatever the frame size. It
	// holds a whole prediction_delta (about 14 KB): one read per frame
	// keeps the clients' share of the CPU, which training competes with on
	// loopback, low.
	clientBuffer = 16 << 10
	clientHead   = 48 // enough for `{"type":"prediction_delta"`
	clientTail   = 40 // enough for `,"seq":18446744073709551615,"attempt":9}`

	// dialWorkers is how many handshakes are in flight at once.
	dialWorkers = 16
)

// Clients is the clients process: `hubload clients -addr HOST:PORT -n N`.
// It opens N WebSocket connections to ws://addr/ws (every run), prints
// Connected, reads one Expect line from stdin, waits for every client to
// have every message it names, prints a ClientsReport and exits, closing
// the connections.
//
// The clients speak raw RFC 6455 frames: each reads its socket through a
// 16 KiB buffer, keeps only a frame's type and seq, and stamps
// time.Now().UnixNano() when the frame's last byte has been read.
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
	cs[0].types, cs[0].bytes = map[uint64]string{}, map[uint64]int{} // one client says what each seq was
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
	want := len(exp.PublishedAt)
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
	return out.Encode(report(cs, exp.PublishedAt))
}

// client is one connection and what it received, in order.
type client struct {
	conn  net.Conn
	br    *bufio.Reader
	count atomic.Int64 // len(seqs), readable while read runs

	seqs []uint64
	at   []int64 // UnixNano when each frame's last byte was read
	// types and bytes, when not nil, record each seq's message type and
	// payload size.
	types map[uint64]string
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

// dial opens one connection and does the opening handshake.
func dial(ctx context.Context, addr string) (*client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	// The key is any 16 bytes in base64 ("kairoscope-load!"); the answer is not checked
	// beyond its status.
	req := "GET /ws?deltas=all HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
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

// read reads frames until the connection ends, noting each text message's
// seq and arrival time; it answers pings and stops at a close frame.
func (c *client) read() {
	head, tail := make([]byte, 0, clientHead), make([]byte, 0, 2*clientTail)
	size := 0
	for {
		fin, op, payload, err := c.frameHeader()
		if err != nil {
			c.err = err
			return
		}
		switch op {
		case 0x8: // close
			c.err = io.EOF
			return
		case 0x9: // ping: answer with a masked pong of the same payload
			p := make([]byte, payload)
			if _, err := io.ReadFull(c.br, p); err != nil {
				c.err = err
				return
			}
			if err := c.pong(p); err != nil {
				c.err = err
				return
			}
			continue
		case 0xA: // pong
			if _, err := c.br.Discard(int(payload)); err != nil {
				c.err = err
				return
			}
			continue
		case 0x1: // a text message starts
			head, tail, size = head[:0], tail[:0], 0
		}
		if head, tail, err = c.payload(head, tail, int(payload)); err != nil {
			c.err = err
			return
		}
		size += int(payload)
		if !fin {
			continue
		}
		at := time.Now().UnixNano()
		seq, ok := tailSeq(tail)
		if !ok {
			c.err = fmt.Errorf("a frame without seq: %q…%q", head, tail)
			return
		}
		if c.types != nil {
			c.types[seq], c.bytes[seq] = headType(head), size
		}
		c.seqs = append(c.seqs, seq)
		c.at = append(c.at, at)
		c.count.Add(1)
	}
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

// payload reads n bytes of a message, keeping its first clientHead bytes in
// head and its last clientTail bytes in tail.
func (c *client) payload(head, tail []byte, n int) ([]byte, []byte, error) {
	if k := min(clientHead-len(head), n); k > 0 {
		head = head[:len(head)+k]
		if _, err := io.ReadFull(c.br, head[len(head)-k:]); err != nil {
			return head, tail, err
		}
		tail = appendTail(tail, head[len(head)-k:])
		n -= k
	}
	if n > clientTail {
		if _, err := c.br.Discard(n - clientTail); err != nil {
			return head, tail, err
		}
		n = clientTail
	}
	var buf [clientTail]byte
	if _, err := io.ReadFull(c.br, buf[:n]); err != nil {
		return head, tail, err
	}
	return head, appendTail(tail, buf[:n]), nil
}

// appendTail appends p to tail and keeps the last clientTail bytes.
func appendTail(tail, p []byte) []byte {
	tail = append(tail, p...)
	if len(tail) > clientTail {
		tail = append(tail[:0], tail[len(tail)-clientTail:]...)
	}
	return tail
}

// pong writes a masked pong frame (a client's frames must be masked; a zero
// mask leaves the payload as it is).
func (c *client) pong(p []byte) error {
	frame := append([]byte{0x8A, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...)
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(frame)
	return err
}

// tailSeq parses the seq of the envelope the log appends last:
// `…,"seq":123,"attempt":1}`.
func tailSeq(tail []byte) (uint64, bool) {
	const key = `,"seq":`
	i := bytes.LastIndex(tail, []byte(key))
	if i < 0 || tail[len(tail)-1] != '}' {
		return 0, false
	}
	i += len(key)
	end := i
	for end < len(tail) && tail[end] >= '0' && tail[end] <= '9' {
		end++
	}
	seq, err := strconv.ParseUint(string(tail[i:end]), 10, 64)
	return seq, err == nil
}

// headType reads "type" when it is a frame's first field, as in every
// training message; else "?".
func headType(head []byte) string {
	const key = `{"type":"`
	if len(head) <= len(key) || string(head[:len(key)]) != key {
		return "?"
	}
	rest := head[len(key):]
	for i, b := range rest {
		if b == '"' {
			return string(rest[:i])
		}
	}
	return "?"
}

// report compares what each client received with what was published.
func report(cs []*client, published []int64) *ClientsReport {
	n := len(published)
	r := &ClientsReport{Clients: len(cs), Messages: n, Types: make([]string, n), Bytes: make([]int, n), LatencyUS: make([][]int64, n)}
	for i := range r.LatencyUS {
		r.LatencyUS[i] = make([]int64, len(cs))
		for j := range r.LatencyUS[i] {
			r.LatencyUS[i][j] = -1
		}
	}
	for j, c := range cs {
		prev := uint64(0)
		for k, seq := range c.seqs {
			if seq != prev+1 {
				r.OutOfOrder++
			}
			prev = seq
			if seq < 1 || seq > uint64(n) || r.LatencyUS[seq-1][j] >= 0 {
				continue // not published, or a duplicate
			}
			r.LatencyUS[seq-1][j] = (c.at[k] - published[seq-1]) / 1e3
			r.Received++
		}
	}
	for seq, t := range cs[0].types {
		if seq >= 1 && seq <= uint64(n) {
			r.Types[seq-1], r.Bytes[seq-1] = t, cs[0].bytes[seq]
		}
	}
	r.Lost = int64(len(cs))*int64(n) - r.Received
	return r
}
