package ws

import (
	"net/http"
	"strings"
	"time"
)

// Config holds every limit of the server. A zero field takes its default, so
// Config{} behaves like DefaultConfig(). The hub reads it once, in NewHub.
type Config struct {
	// MaxConnections caps concurrent WebSocket connections on /ws and
	// /ws/predict together (default 2000). Beyond it the server answers
	// HTTP 503 before upgrading; the server enforces it before calling
	// ServeWS, which does not check it.
	MaxConnections int

	// SendQueue is the number of live messages queued per client (default
	// 256). When a client's queue is full the hub closes that client with
	// CloseSlowClient and drops it; nobody else waits. History replayed on
	// join does not go through this queue.
	SendQueue int

	// MaxMessageBytes is the largest client frame accepted (default 4096).
	// A bigger one closes the connection with 1009 (message too big).
	MaxMessageBytes int64

	// WriteWait is the deadline for writing one frame (default 10s). A
	// write that misses it ends the connection without a close frame: the
	// peer is not reading.
	WriteWait time.Duration

	// PongWait is how long a peer may stay silent (default 60s): no pong and
	// no message for this long closes it. The server pings every
	// PongWait/2, so a live peer has half of it to answer.
	PongWait time.Duration

	// History is the number of messages kept per run for replay (default
	// 100000). Older ones are dropped; a client joining later starts at the
	// oldest kept seq, so the gap shows in the seq numbers.
	History int

	// AllowedOrigins lists the Origin values (e.g. "https://dash.example")
	// that may open a WebSocket, compared case-insensitively. Empty accepts
	// any Origin: the seed's client runs from any page or the console. A
	// request without Origin is not from a browser and is always accepted:
	// the check only stops other sites' pages from using a visitor's browser.
	// A refused Origin gets HTTP 403.
	AllowedOrigins []string

	// OnPublish, when not nil, is called for every message the hub
	// delivers, with its run, the seq the hub gave it and the time Publish
	// was called. It is a measuring hook (benchmarks/hubload times delivery
	// latency with it): it runs on the hub goroutine before the message is
	// queued to any client, so it must return at once and must not call the
	// hub. nil, the default, costs nothing, not even the clock read.
	OnPublish func(runID string, seq uint64, at time.Time)

	// Abridge, when not nil, may return a smaller stand-in for a published
	// message, or nil to send it whole: clients get the stand-in unless
	// they connect with ?deltas=all. The server abridges prediction_delta
	// during training (abridgeDelta), 95% of a run's bytes, which few
	// clients read. It runs in Publish's caller.
	Abridge func(msg []byte) []byte
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		MaxConnections:  2000,
		SendQueue:       256,
		MaxMessageBytes: 4096,
		WriteWait:       10 * time.Second,
		PongWait:        60 * time.Second,
		History:         100000,
	}
}

// CloseSlowClient is the close code sent to a client whose send queue
// overflowed (reason "slow client: send queue full"). It is in the range
// RFC 6455 leaves to applications; a client may reconnect and replay.
const CloseSlowClient = 4008

// Close reasons sent with the close frames the hub initiates.
const (
	hubReasonSlowClient  = "slow client: send queue full"
	hubReasonShutdown    = "server shutting down"
	hubReasonRunFinished = "run finished"
)

// withDefaults replaces every zero or negative limit with its default.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxConnections <= 0 {
		c.MaxConnections = d.MaxConnections
	}
	if c.SendQueue <= 0 {
		c.SendQueue = d.SendQueue
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.WriteWait <= 0 {
		c.WriteWait = d.WriteWait
	}
	if c.PongWait <= 0 {
		c.PongWait = d.PongWait
	}
	if c.History <= 0 {
		c.History = d.History
	}
	return c
}

// pingPeriod is how often the server pings: twice per PongWait, so a live
// peer has half of PongWait to answer each ping (at 9/10, gorilla's
// example, a peer on a loaded machine had only a tenth).
func (c Config) pingPeriod() time.Duration { return c.PongWait / 2 }

// checkOrigin reports whether r may be upgraded under AllowedOrigins.
func (c Config) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if len(c.AllowedOrigins) == 0 || origin == "" {
		return true
	}
	for _, o := range c.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}
