package hubload

import (
	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
)

// The driver talks to the server and clients processes in JSON lines: one
// object per line on their stdin, one answer per line on their stdout. Their
// logs go to stderr.

// Ready is the server's first line: where it listens.
type Ready struct {
	Addr string `json:"addr"`
}

// Command is one request to the server process.
type Command struct {
	Cmd     string            `json:"cmd"`               // CmdMem, CmdWaitClients, CmdTrain or CmdPublishes
	Clients int               `json:"clients,omitempty"` // CmdWaitClients: how many to wait for
	Request schema.RunRequest `json:"request,omitzero"`  // CmdTrain
	RunID   string            `json:"run_id,omitempty"`  // CmdPublishes
}

// The server's commands.
const (
	// CmdMem collects garbage, returns memory to the OS and answers Mem.
	CmdMem = "mem"
	// CmdWaitClients answers once the hub has Clients clients (Reply.Clients).
	CmdWaitClients = "wait_clients"
	// CmdTrain starts a run of Request and answers when it has ended
	// (Reply.Run), or with an error when it did not complete.
	CmdTrain = "train"
	// CmdPublishes answers, once the hub has delivered every message of
	// run RunID, when each was published (Reply.PublishedAt).
	CmdPublishes = "publishes"
)

// Reply is the server's answer to a Command.
type Reply struct {
	Error       string         `json:"error,omitempty"`
	Mem         *Mem           `json:"mem,omitempty"`
	Clients     int            `json:"clients,omitempty"`
	Run         *runlog.Record `json:"run,omitempty"`
	PublishedAt []int64        `json:"published_at,omitempty"` // UnixNano, index seq-1
}

// Mem is the server process's memory after a GC that returned freed memory
// to the OS.
type Mem struct {
	HeapBytes  int64 `json:"heap_bytes"`  // runtime.MemStats.HeapInuse
	StackBytes int64 `json:"stack_bytes"` // runtime.MemStats.StackInuse: goroutine stacks
	RSSBytes   int64 `json:"rss_bytes"`   // VmRSS
	Goroutines int   `json:"goroutines"`
}

// Connected is the clients process's first line, once every client has
// finished its handshake.
type Connected struct {
	Clients     int     `json:"connected"`
	DialSeconds float64 `json:"dial_seconds"`
}

// Expect is the one line the clients process reads: what the server
// published. It then waits, up to TimeoutSeconds, for every client to have
// every message, and answers ClientsReport.
type Expect struct {
	PublishedAt    []int64 `json:"published_at"` // UnixNano, index seq-1
	TimeoutSeconds float64 `json:"timeout_seconds"`
}

// ClientsReport is what the clients received. A delivery is one message to
// one client; a client should get seq 1..N, each once, in order.
type ClientsReport struct {
	Clients  int `json:"clients"`
	Messages int `json:"messages"` // N: len(Expect.PublishedAt)
	// Received counts deliveries of seqs 1..N; Lost those that never came;
	// OutOfOrder the frames whose seq was not the previous one's + 1.
	Received   int64 `json:"received"`
	Lost       int64 `json:"lost"`
	OutOfOrder int64 `json:"out_of_order"`
	// Per seq (index seq-1): the message's type, its frame's payload size,
	// and each client's latency in microseconds (-1: never received).
	Types     []string  `json:"types"`
	Bytes     []int     `json:"bytes"`
	LatencyUS [][]int64 `json:"latency_us"`
}
