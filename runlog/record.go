package runlog

import (
	"time"

	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// Run states. A run moves queued → running → completed | failed |
// cancelled; running → queued again when its agent stops gracefully or is
// lost (a new attempt follows); queued or running → cancelling → cancelled.
const (
	StateQueued     = "queued"
	StateRunning    = "running"
	StateCancelling = "cancelling" // cancel asked; the agent is stopping the worker
	StateCompleted  = "completed"
	StateFailed     = "failed"
	StateCancelled  = "cancelled"
)

// Ended reports whether state is final.
func Ended(state string) bool {
	return state == StateCompleted || state == StateFailed || state == StateCancelled
}

// Active reports whether a run in state still waits or runs.
func Active(state string) bool { return !Ended(state) }

// Record is a run's durable state: the value of its key in the runs bucket,
// what GET /api/runs returns. Every change is a compare-and-swap on the
// key's revision, so one writer wins each transition.
type Record struct {
	ID    string `json:"run_id"`
	Lane  string `json:"lane"`  // LaneTrain or LaneForecast
	Class string `json:"class"` // ClassGPU, ClassCPU or ClassAny
	State string `json:"state"`
	// Request is the accepted run request (train and tune runs).
	Request *schema.RunRequest `json:"request,omitempty"`
	// Spec is the job an agent runs, as its worker will read it (Reports
	// is filled in by the agent).
	Spec worker.Spec `json:"spec"`
	// Device is the device the job asks for (auto, cpu, gpu).
	Device string `json:"device"`

	Created time.Time  `json:"created"`
	Started *time.Time `json:"started,omitempty"` // the current attempt's start
	Ended   *time.Time `json:"ended,omitempty"`

	// Attempt counts the attempts started (0 while it never ran). Retries
	// counts those started because an agent was lost; at Config.MaxRetries
	// the next loss fails the run.
	Attempt    int `json:"attempt"`
	Retries    int `json:"retries"`
	MaxRetries int `json:"max_retries"` // Config.MaxRetries of the replica that accepted it
	// Agent holds the run while it runs: the agent's name and this process
	// of it (a restarted agent is a new incarnation), and until when.
	Agent       string     `json:"agent,omitempty"`
	Incarnation string     `json:"incarnation,omitempty"`
	LeaseUntil  *time.Time `json:"lease_until,omitempty"`
	// Notes says what happened to earlier attempts, oldest first.
	Notes []string `json:"notes,omitempty"`

	// JobSeq is the job message's sequence in the jobs stream, to delete a
	// queued job on cancel.
	JobSeq uint64 `json:"job_seq,omitempty"`
	// Messages is the run's last seq when it ended.
	Messages    uint64 `json:"messages"`
	Error       string `json:"error,omitempty"`
	SummaryPath string `json:"summary_path,omitempty"`
}

// leaseExpired reports whether the holder's lease has run out at now.
func (r *Record) leaseExpired(now time.Time) bool {
	return r.LeaseUntil == nil || now.After(*r.LeaseUntil)
}
