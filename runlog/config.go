package runlog

import "time"

// Config holds the log's limits and timings. A zero field takes its
// default. Every replica and agent of one deployment must use the same
// values: the streams are created with them (Open updates them).
type Config struct {
	// Lease is how long an agent holds a running job without renewing it
	// (default 60s), and the job's AckWait: an agent silent for longer is
	// presumed dead and its job goes to another agent as a new attempt. It
	// renews every Lease/4.
	Lease time.Duration

	// MaxRetries is how many new attempts a run gets after losing its agent
	// (default 2); one more loss fails it, visibly. A worker that fails on
	// its own is never retried: the same spec would fail again.
	MaxRetries int

	// History is how many messages each run's log keeps (default 100000),
	// and MaxAge how long (default 7 days); EventBytes caps the whole events
	// stream (default 4 GiB), dropping the oldest messages first.
	History    int
	MaxAge     time.Duration
	EventBytes int64

	// KeepRuns is how many ended runs keep their record and log (default
	// 1000); older ones are pruned, log included.
	KeepRuns int

	// Replicas is the streams' replication factor (default 1; 3 on a
	// three-node cluster).
	Replicas int
}

func (c Config) withDefaults() Config {
	if c.Lease <= 0 {
		c.Lease = 60 * time.Second
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	} else if c.MaxRetries == 0 {
		c.MaxRetries = 2
	}
	if c.History <= 0 {
		c.History = 100000
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.EventBytes <= 0 {
		c.EventBytes = 4 << 30
	}
	if c.KeepRuns <= 0 {
		c.KeepRuns = 1000
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	return c
}
