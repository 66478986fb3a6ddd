package hub

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// textFrame's bytes, written straight onto an upgraded connection, are
// text messages a gorilla client reads back whole, at each length
// encoding's edges.
func TestTextFrameReadsBack(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 300000}
	msg := func(n int) []byte { return []byte(strings.Repeat("x", n)) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for _, n := range sizes {
			if _, err := conn.NetConn().Write(textFrame(msg(n))); err != nil {
				return
			}
		}
		conn.ReadMessage() // until the client leaves
	}))
	defer srv.Close()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadLimit(1 << 20)
	for _, n := range sizes {
		typ, got, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if typ != websocket.TextMessage || !bytes.Equal(got, msg(n)) {
			t.Fatalf("%d bytes: read type %d, %d bytes", n, typ, len(got))
		}
	}
}
