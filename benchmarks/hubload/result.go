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
	TargetConnBytes = 24 << 10 // per connection
)

// Result is Measure's account of the hub under load.
type Result struct {
	Clients int               `json:"clients"`
	Runs    int               `json:"runs"` // runs with no client and with Clients clients, each
	Request schema.RunRequest `json:"request"`
	Method  string            `json:"method"`

	// One run's messages, and the bytes of their frames (what each client
	// reads).
	Messages       int   `json:"messages_per_run"`
	BytesPerClient int64 `json:"bytes_per_client_per_run"`

	// Over every loaded run: deliveries expected (Runs × Clients ×
	// Messages), those that never arrived, and frames out of sequence.
	Deliveries int64 `json:"deliveries"`
	Lost       int64 `json:"lost"`
	OutOfOrder int64 `json:"out_of_order"`
	// Latency is over every delivery of every loaded run; ByType per
	// message type.
	Latency Latency       `json:"latency_ms"`
	ByType  []TypeLatency `json:"latency_ms_by_type"`
	// RunsP99 is each loaded run's own p99, in order: on a shared machine
	// one bad run can carry the pooled p99.
	RunsP99 []float64 `json:"runs_p99_ms"`

	// The run's wall time (the server's RunInfo, started to ended: the
	// worker process's whole life) without clients and with them: medians
	// and every run, in order.
	AloneS     float64   `json:"train_s_alone"`
	LoadedS    float64   `json:"train_s_loaded"`
	Slowdown   float64   `json:"slowdown"` // LoadedS / AloneS
	AloneRuns  []float64 `json:"runs_train_s_alone"`
	LoadedRuns []float64 `json:"runs_train_s_loaded"`

	// CPU seconds (user + system), medians per run: the server process with
	// its worker (wait4 counts a process's waited-for children), alone and
	// loaded, and the clients process.
	// The _sys fields are the kernel's share (system time).
	ServerCPUAloneS  float64 `json:"server_cpu_s_alone"`
	ServerCPULoadedS float64 `json:"server_cpu_s_loaded"`
	ClientsCPUS      float64 `json:"clients_cpu_s"`
	ServerSysAloneS  float64 `json:"server_cpu_s_alone_sys"`
	ServerSysLoadedS float64 `json:"server_cpu_s_loaded_sys"`
	ClientsSysS      float64 `json:"clients_cpu_s_sys"`

	// Per idle connection (all clients connected, no run yet), medians over
	// the loaded runs: the server's growth in heap plus goroutine stacks
	// after a GC, and in RSS.
	ConnBytes    int64   `json:"conn_heap_stack_bytes"`
	ConnRSSBytes int64   `json:"conn_rss_bytes"`
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

// Met reports whether each target is met: latency (p99 and nothing lost),
// slowdown and memory per connection. With fewer clients than
// TargetClients none is.
func (r *Result) Met() (latency, slowdown, memory bool) {
	if r.Clients < TargetClients {
		return false, false, false
	}
	return r.Lost == 0 && r.OutOfOrder == 0 && r.Latency.P99 <= TargetP99MS,
		r.Slowdown < TargetSlowdown, r.ConnBytes <= TargetConnBytes
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
