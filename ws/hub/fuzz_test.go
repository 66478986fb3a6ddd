package hub

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// clientFrame is one masked client frame: fin, opcode and payload, with
// the length encoding RFC 6455 asks for.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op & 0x0f
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n < 1<<16:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	mask := []byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, mask...)
	for i, c := range payload {
		out = append(out, c^mask[i%4])
	}
	return out
}

// FuzzClientFrames writes arbitrary bytes as a client's frames after a
// real handshake, then half-closes. The hub must never panic, must end the
// connection in bounded time, must send only JSON objects in text frames
// and well-formed control frames, and must be left with no client.
func FuzzClientFrames(f *testing.F) {
	for _, in := range [][]byte{
		clientFrame(true, 1, []byte("ping")),
		joinFrames([][]byte{clientFrame(true, 9, []byte("p")), clientFrame(true, 1, []byte(" ping "))}),
		clientFrame(true, 8, []byte{0x03, 0xe8}),                                                      // a close 1000
		clientFrame(true, 2, []byte{0, 1, 2}),                                                         // binary, ignored
		clientFrame(true, 1, make([]byte, 5000)),                                                      // over MaxMessageBytes: 1009
		joinFrames([][]byte{clientFrame(false, 1, []byte("pi")), clientFrame(true, 0, []byte("ng"))}), // fragmented
		clientFrame(true, 9, make([]byte, 200)),                                                       // a control frame too long: 1002
		clientFrame(true, 3, []byte("x")),                                                             // a reserved opcode
		{0x81, 0x04, 'p', 'i', 'n', 'g'},                                                              // unmasked
		{0xc1, 0x80, 0, 0, 0, 0},                                                                      // a reserved bit
		{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},                                  // a length of 2^63
		clientFrame(true, 1, []byte("\xff\xfe")),                                                      // invalid UTF-8
	} {
		f.Add(in)
	}
	h := NewHub(Config{MaxMessageBytes: 4096}, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	go h.Run(ctx)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.Serve(w, r, Subscription{}) }))
	f.Cleanup(srv.Close)
	for seq := uint64(1); seq <= 3; seq++ {
		h.Append(Message{Stream: "r", Seq: seq, Payload: payload(`{"type":"epoch_metrics"`, "r", seq)})
	}
	addr := strings.TrimPrefix(srv.URL, "http://")

	f.Fuzz(func(t *testing.T, in []byte) {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if err := handshake(conn, addr); err != nil {
			t.Fatalf("handshake: %v", err)
		}
		conn.Write(in) // the server may close first: an error is fine
		conn.(*net.TCPConn).CloseWrite()
		br := bufio.NewReader(conn)
		var buf []byte
		for {
			op, p, err := readRawFrame(br, buf)
			if err == io.EOF || err == io.ErrUnexpectedEOF || isReset(err) {
				break
			}
			if err != nil {
				t.Fatalf("reading the server (%d clients): %v", h.Clients(), err)
			}
			switch op {
			case 1:
				var obj map[string]json.RawMessage
				if json.Unmarshal(p, &obj) != nil {
					t.Fatalf("text frame %q is not a JSON object", p)
				}
			case 8:
				if len(p) == 1 || len(p) > 125 {
					t.Fatalf("close frame payload %q", p)
				}
			case 9, 10:
				if len(p) > 125 {
					t.Fatalf("control frame of %d bytes", len(p))
				}
			default:
				t.Fatalf("server frame with opcode %d", op)
			}
			buf = p
		}
		deadline := time.Now().Add(5 * time.Second)
		for h.Clients() > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d clients left after the connection ended", h.Clients())
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// handshake upgrades conn to a WebSocket of /ws, by hand: no client
// goroutine, nothing buffered past the response.
func handshake(conn net.Conn, addr string) error {
	_, err := io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if err != nil {
		return err
	}
	var resp []byte
	b := make([]byte, 1)
	for !strings.HasSuffix(string(resp), "\r\n\r\n") {
		if _, err := conn.Read(b); err != nil {
			return err
		}
		resp = append(resp, b[0])
	}
	if !strings.HasPrefix(string(resp), "HTTP/1.1 101") {
		return fmt.Errorf("response %q", resp)
	}
	return nil
}

func joinFrames(frames [][]byte) []byte {
	var out []byte
	for _, f := range frames {
		out = append(out, f...)
	}
	return out
}

// isReset reports a connection the server reset, which ends a read as
// EOF does.
func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}
