package ws

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestClientPingPong: the seed's text "ping" gets {"type":"pong"} and keeps
// the connection; other text and binary messages are ignored.
func TestClientPingPong(t *testing.T) {
	e := newHubTestEnv(t, Config{}, nil)
	conn := e.dial("?run=r")
	for range 3 {
		if err := conn.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(hubTestWait))
		typ, data, err := conn.ReadMessage()
		if err != nil || typ != websocket.TextMessage || string(data) != `{"type":"pong"}` {
			t.Fatalf("after ping: %d %q %v, want the text {\"type\":\"pong\"}", typ, data, err)
		}
	}
	conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe"}`))
	conn.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2})
	e.hub.Publish("r", hubTestMsg(1))
	hubTestExpect(t, conn, hubTestFrame{RunID: "r", Seq: 1})
}

// TestClientOversizeMessage: a client frame over MaxMessageBytes closes the
// connection with 1009, and the close frame arrives intact.
func TestClientOversizeMessage(t *testing.T) {
	e := newHubTestEnv(t, Config{MaxMessageBytes: 64}, nil)
	conn := e.dial("")
	hubTestWaitFor(t, "the client", func() bool { return e.hub.Clients() == 1 })
	if err := conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 64))); err != nil {
		t.Fatal(err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 65))); err != nil {
		t.Fatal(err)
	}
	hubTestExpectClose(t, conn, websocket.CloseMessageTooBig, "")
	conn.Close()
	hubTestWaitFor(t, "the client to be removed", func() bool { return e.hub.Clients() == 0 })
}

// TestClientDeadPeer: a peer that answers no ping for PongWait is closed.
func TestClientDeadPeer(t *testing.T) {
	e := newHubTestEnv(t, Config{PongWait: 400 * time.Millisecond}, nil)
	e.dial("") // never reads, so never answers a ping
	alive := e.dial("")
	go func() { // reading answers pings
		for {
			if _, _, err := alive.ReadMessage(); err != nil {
				return
			}
		}
	}()
	hubTestWaitFor(t, "2 clients", func() bool { return e.hub.Clients() == 2 })
	hubTestWaitFor(t, "the dead peer to be closed", func() bool { return e.hub.Clients() == 1 })
	time.Sleep(1200 * time.Millisecond) // three more PongWaits: the live one stays
	if n := e.hub.Clients(); n != 1 {
		t.Errorf("Clients() = %d, want the live one", n)
	}
}

// TestHubOrigin: with AllowedOrigins set, another site's page is refused
// with 403; a listed Origin (any case) and non-browser clients (no Origin)
// are accepted. With none set, any Origin is.
func TestHubOrigin(t *testing.T) {
	e := newHubTestEnv(t, Config{AllowedOrigins: []string{"https://dash.example"}}, nil)
	open := newHubTestEnv(t, Config{}, nil)
	tests := []struct {
		env    *hubTestEnv
		origin string
		status int
	}{
		{e, "https://evil.example", http.StatusForbidden},
		{e, "https://dash.example:8443", http.StatusForbidden},
		{e, "https://dash.example", http.StatusSwitchingProtocols},
		{e, "HTTPS://Dash.Example", http.StatusSwitchingProtocols},
		{e, "", http.StatusSwitchingProtocols},
		{open, "https://evil.example", http.StatusSwitchingProtocols},
		{open, "null", http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.origin != "" {
			h.Set("Origin", tt.origin)
		}
		conn, resp, err := websocket.DefaultDialer.Dial(tt.env.url, h)
		if resp == nil {
			t.Fatalf("Origin %q: %v", tt.origin, err)
		}
		if resp.StatusCode != tt.status {
			t.Errorf("Origin %q: HTTP %d, want %d", tt.origin, resp.StatusCode, tt.status)
		}
		if conn != nil {
			conn.Close()
		}
	}
}
