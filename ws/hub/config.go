package hub

import (
	"net/http"
	"time"
)

// Config holds every limit of a hub. A zero field takes its default, so
// Config{} behaves like DefaultConfig(). NewHub reads it once.
type Config struct {
	// SendQueue is the number of live messages queued per client (default
	// 256). When a client's queue is full the hub closes that client with
	// CloseSlowClient and drops it; nobody else waits. History written while
	// a client catches up never goes through this queue.
	SendQueue int

	// MaxMessageBytes is the largest client frame accepted (default 4096).
	// A bigger one closes the connection with 1009 (message too big).
	MaxMessageBytes int64

	// WriteWait is the deadline for writing one batch of frames (default
	// 10s). A write that misses it ends the connection without a close
	// frame: the peer is not reading.
	WriteWait time.Duration

	// PongWait is how long a peer may stay silent (default 60s): no pong and
	// no message for this long closes it. The hub pings every PongWait/2, so
	// a live peer has half of it to answer.
	PongWait time.Duration

	// History is the number of messages a stream keeps in memory (default
	// 100000). Older ones are dropped; a client that needs them gets a
	// replay_gap notice, or the log loads them back (Load).
	History int

	// StreamBytes caps the memory one stream's history holds (default 256
	// MiB); past it the oldest messages are dropped as for History.
	StreamBytes int64

	// TotalBytes caps the memory of every stream's history together (default
	// 1 GiB). Past it the hub drops ended streams, oldest first, then the
	// oldest messages of the largest stream.
	TotalBytes int64

	// KeepEnded is how many ended streams stay in memory (default 20), for
	// clients that follow one of them; older ones are dropped and loaded
	// back from the log when asked for.
	KeepEnded int

	// CheckOrigin reports whether a request's Origin may open a WebSocket
	// (HTTP 403 when not). nil accepts every Origin.
	CheckOrigin func(r *http.Request) bool

	// OnAppend, when not nil, is called on the hub's goroutine for every
	// message it accepts into a stream, before any client is handed it. It
	// is a measuring hook (delivery lag): it must return at once and must not
	// call the hub.
	OnAppend func(stream string, seq uint64)
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		SendQueue:       256,
		MaxMessageBytes: 4096,
		WriteWait:       10 * time.Second,
		PongWait:        60 * time.Second,
		History:         100000,
		StreamBytes:     256 << 20,
		TotalBytes:      1 << 30,
		KeepEnded:       20,
	}
}

// WithDefaults replaces every zero or negative limit with its default.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	or := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	or64 := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	orDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	or(&c.SendQueue, d.SendQueue)
	or64(&c.MaxMessageBytes, d.MaxMessageBytes)
	orDur(&c.WriteWait, d.WriteWait)
	orDur(&c.PongWait, d.PongWait)
	or(&c.History, d.History)
	or64(&c.StreamBytes, d.StreamBytes)
	or64(&c.TotalBytes, d.TotalBytes)
	or(&c.KeepEnded, d.KeepEnded)
	return c
}

// pingPeriod is how often the hub pings: twice per PongWait, so a live peer
// has half of PongWait to answer each ping.
func (c Config) pingPeriod() time.Duration { return c.PongWait / 2 }

// CloseSlowClient is the close code sent to a client whose live queue
// overflowed (reason "slow client: send queue full"). It is in the range
// RFC 6455 leaves to applications; the client may reconnect with since= and
// get exactly what it missed.
const CloseSlowClient = 4008

// Close reasons sent with the close frames the hub initiates.
const (
	ReasonSlowClient = "slow client: send queue full"
	ReasonShutdown   = "server shutting down"
	ReasonEnded      = "run finished"
)
