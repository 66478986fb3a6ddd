package hubload

import (
	"github.com/kairoscope/kairoscope/schema"
)

// The driver talks to the server and clients processes in JSON lines: one
// object per line on their stdin, one answer per line on their stdout. Their
// logs go to stderr. Every server speaks it, the FastAPI peer
// (peers/fastapi_hub.py) included.

// Ready is the server's first line: where it listens, and what serves.
type Ready struct {
	Addr  string `json:"addr"`
	Stack string `json:"stack,omitempty"`
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
	// CmdWaitClients answers once the server has Clients clients
	// (Reply.Clients).
	CmdWaitClients = "wait_clients"
	// CmdTrain runs Request and answers when it has ended (Reply.Run), or
	// with an error when it did not complete.
	CmdTrain = "train"
	// CmdPublishes answers, once every message of run RunID has been
	// published, when each was and what it was (Reply.Published).
	CmdPublishes = "publishes"
)

// Reply is the server's answer to a Command.
type Reply struct {
	Error     string     `json:"error,omitempty"`
	Mem       *Mem       `json:"mem,omitempty"`
	Clients   int        `json:"clients,omitempty"`
	Run       *RunInfo   `json:"run,omitempty"`
	Published *Published `json:"published,omitempty"`
}

// RunInfo is a completed run.
type RunInfo struct {
	ID string `json:"run_id"`
	// TrainS is the run's wall time: the worker process's whole life (on
	// the log path, the run record's started to ended).
	TrainS float64 `json:"train_s"`
}

// Published is what a server published of one run, index seq-1: when each
// message was handed to the serving stack (UnixNano) and its type.
type Published struct {
	At    []int64  `json:"at"`
	Types []string `json:"types"`
}

// Mem is the server process's memory after a GC that returned freed memory
// to the OS. The FastAPI peer has only RSSBytes (HeapBytes is -1).
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
// every message a plain client gets (plainGets), and answers ClientsReport.
type Expect struct {
	Published      Published `json:"published"`
	TimeoutSeconds float64   `json:"timeout_seconds"`
}

// ClientsReport is what the clients received. A delivery is one message to
// one client; a client should get, each once and in order, every published
// seq that plainGets.
type ClientsReport struct {
	Clients  int `json:"clients"`
	Messages int `json:"messages"` // published: len(Expect.Published.At)
	Expected int `json:"expected"` // of them, those a plain client gets
	// Received counts deliveries of expected seqs; Lost those that never
	// came; Unexpected deliveries of published seqs a plain client should
	// not get; OutOfOrder the frames whose seq was not above the previous
	// one's; Others frames that carried no seq of the run.
	Received   int64 `json:"received"`
	Lost       int64 `json:"lost"`
	Unexpected int64 `json:"unexpected"`
	OutOfOrder int64 `json:"out_of_order"`
	Others     int64 `json:"others"`
	// Per seq (index seq-1): the message's type, its frame's payload size
	// as the first client got it (0: it got none), and each client's
	// latency in microseconds (-1: never received).
	Types     []string  `json:"types"`
	Bytes     []int     `json:"bytes"`
	LatencyUS [][]int64 `json:"latency_us"`
}

// plainGets reports whether a plain /ws client, connected with no query as
// the seed's clients connect, gets a message of type t: every message but
// prediction_delta, whose rows go only to clients that ask (?deltas=, the
// README's replay semantics). This is the contract the clients check, not
// the hub's code.
func plainGets(t string) bool { return t != schema.TypePredictionDelta }
