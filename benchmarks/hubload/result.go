package hubload

import (
	"math"
	"slices"

	"github.com/kairoscope/kairoscope/schema"
)

// DESIGN.md's targets for the hub, 1,000 clients on loopback during a run.
const (
	TargetClients   = 1000
	TargetP99MS     = 10.0     // delivery latency p99, with nothing lost
	TargetSlowdown  = 1.10     // training slowed by less than 10%
	TargetConnBytes = 24 << 10 // server RSS per connection
)

// Result is Measure's account of the hub under load, path by path.
type Result struct {
	Clients int               `json:"clients"`
	Runs    int               `json:"runs"` // runs with no client and with Clients clients, each, per path
	Request schema.RunRequest `json:"request"`
	Method  string            `json:"method"`
	Pinning Pinning           `json:"pinning"`
	// Load is the machine's load average over 1, 5 and 15 minutes
	// (/proc/loadavg) when the measurement began and when it ended: on a
	// shared machine, how much else was running.
	Load [2]string `json:"loadavg"`
	// Paths are the hub paths measured, in the order asked; Skipped those
	// asked for that could not run, and why.
	Paths   []PathResult  `json:"paths"`
	Skipped []SkippedPath `json:"skipped,omitempty"`
	// Start is the latency from POST /api/runs to the first epoch_metrics
	// (StartLatency; absent when not measured).
	Start *StartResult `json:"start,omitempty"`
}

// SkippedPath is a path that was asked for and not measured.
type SkippedPath struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// PathResult is one hub path under load.
type PathResult struct {
	Path  string `json:"path"`  // PathLog, PathMemory or PathFastAPI
	Stack string `json:"stack"` // what served it (the server's Ready line)

	// One run's messages published, those a plain client gets, and the
	// bytes of their payloads (what each client parses).
	Messages          int   `json:"messages_per_run"`
	MessagesPerClient int   `json:"messages_per_client"`
	BytesPerClient    int64 `json:"bytes_per_client"`

	// Over every loaded run: deliveries expected (Runs × Clients ×
	// MessagesPerClient), those that never arrived, those of messages a
	// plain client should not get, frames out of sequence, frames without
	// a seq of the run.
	Deliveries int64 `json:"deliveries"`
	Lost       int64 `json:"lost"`
	Unexpected int64 `json:"unexpected"`
	OutOfOrder int64 `json:"out_of_order"`
	Others     int64 `json:"others"`

	// P50 and P99 are the medians over the loaded runs of each run's own
	// quantiles (RunsP50, RunsP99, in order); Latency pools every delivery
	// of every run, and ByType splits it by message type.
	P50     float64       `json:"p50_ms"`
	P99     float64       `json:"p99_ms"`
	RunsP50 []float64     `json:"runs_p50_ms"`
	RunsP99 []float64     `json:"runs_p99_ms"`
	Latency Latency       `json:"latency_ms_pooled"`
	ByType  []TypeLatency `json:"latency_ms_by_type"`

	// The run's wall time (RunInfo.TrainS) without clients and with them:
	// medians and every run, in order.
	AloneS     float64   `json:"train_s_alone"`
	LoadedS    float64   `json:"train_s_loaded"`
	Slowdown   float64   `json:"slowdown"` // LoadedS / AloneS
	AloneRuns  []float64 `json:"runs_train_s_alone"`
	LoadedRuns []float64 `json:"runs_train_s_loaded"`

	// CPU seconds (user + system), medians per run: the server process with
	// its worker (and feed: wait4 counts a process's waited-for
	// descendants), alone and loaded, and the clients process. The _sys
	// fields are the kernel's share.
	ServerCPUAloneS  float64 `json:"server_cpu_s_alone"`
	ServerCPULoadedS float64 `json:"server_cpu_s_loaded"`
	ClientsCPUS      float64 `json:"clients_cpu_s"`
	ServerSysAloneS  float64 `json:"server_cpu_s_alone_sys"`
	ServerSysLoadedS float64 `json:"server_cpu_s_loaded_sys"`
	ClientsSysS      float64 `json:"clients_cpu_s_sys"`

	// Per idle connection (all clients connected, no run yet), medians over
	// the loaded runs: the server's growth in RSS, and in Go heap plus
	// goroutine stacks after a GC (-1 for the FastAPI peer, which has no
	// such figure).
	ConnRSSBytes int64   `json:"conn_rss_bytes"`
	ConnBytes    int64   `json:"conn_heap_stack_bytes"`
	DialS        float64 `json:"dial_s"` // median time to connect every client
}

// Latency is a distribution of delivery latencies in milliseconds
// (nearest-rank quantiles).
type Latency struct {
	N    int64   `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// TypeLatency is the latency of one message type's deliveries.
type TypeLatency struct {
	Type     string `json:"type"`
	Messages int    `json:"messages_per_run"`
	Bytes    int    `json:"bytes"` // mean frame payload
	Latency
}

// Met reports whether each target is met: latency (the median run p99,
// with nothing lost, unexpected or out of order), slowdown and RSS per
// connection. With fewer clients than TargetClients none is.
func (p *PathResult) Met(clients int) (latency, slowdown, memory bool) {
	if clients < TargetClients {
		return false, false, false
	}
	return p.Lost == 0 && p.Unexpected == 0 && p.OutOfOrder == 0 && p.P99 <= TargetP99MS,
		p.Slowdown < TargetSlowdown, p.ConnRSSBytes <= TargetConnBytes
}

// Path returns the result of path, or nil.
func (r *Result) Path(path string) *PathResult {
	for i := range r.Paths {
		if r.Paths[i].Path == path {
			return &r.Paths[i]
		}
	}
	return nil
}

// latencyOf sorts ms in place and summarises it.
func latencyOf(ms []float64) Latency {
	if len(ms) == 0 {
		return Latency{}
	}
	slices.Sort(ms)
	q := func(p float64) float64 {
		i := int(math.Ceil(float64(len(ms))*p)) - 1 // nearest rank: ⌈p·n⌉
		return ms[min(max(i, 0), len(ms)-1)]
	}
	return Latency{N: int64(len(ms)), P50: q(0.50), P90: q(0.90), P99: q(0.99), P999: q(0.999), Max: ms[len(ms)-1]}
}

// Median of v (the mean of the middle two for an even count); 0 when empty.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
