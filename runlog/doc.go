// Package runlog keeps runs as a durable log on NATS JetStream: the job
// queues that agents take work from, each run's record (its state, attempt
// and lease, changed only by compare-and-swap), and each run's messages, an
// append-only stream numbered by seq that only the attempt holding the run
// may extend (fenced by expected-sequence publishes). Every serve replica
// and every agent sees the same runs through it.
//
// It knows NATS and the worker protocol's job spec, never training code or
// WebSockets: the hub (ws/hub) is a cache fed from it, agents (package
// agent) write to it.
package runlog
