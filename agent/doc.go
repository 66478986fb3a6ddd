// Package agent takes jobs from the run log's queues and runs them in
// worker processes: `kairoscope agent` on any machine, and the local agent
// inside `kairoscope serve`. It holds each job with a lease it renews,
// appends the worker's messages (and milestone notifications) to the run's
// log, stops the worker when the run is cancelled or fenced, and records
// how the job ended.
//
// It imports no training code: workers are separate processes.
package agent
