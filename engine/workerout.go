package engine

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"sync/atomic"

	"github.com/kairoscope/kairoscope/engine/model"
	"github.com/kairoscope/kairoscope/worker"
)

// RunWorker runs spec as a worker process does: its messages as JSON lines
// on stdout, and a keepalive line (worker.Output.KeepAlive) every
// rt.KeepAlive (default worker.KeepAliveEvery) in which a training step
// finished, so that a job
// silent by design (a tune's trials send nothing) is not taken for a hung
// one; a job that stops making progress stops the keepalives too.
func RunWorker(ctx context.Context, spec worker.Spec, rt Runtime, stdout io.Writer) error {
	out := worker.NewOutput(stdout)
	var steps atomic.Int64
	// The innermost trace wins: a run's batch_progress trace replaces this
	// one, and its messages are then the sign of life.
	ctx = model.WithEpochTrace(ctx, &model.EpochTrace{StepDone: func(int, int) { steps.Add(1) }})
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait() // no keepalive after the return
	defer close(done)
	var seen int64
	every := rt.KeepAlive
	if every <= 0 {
		every = worker.KeepAliveEvery
	}
	wg.Go(func() {
		out.KeepAlive(done, every, func() bool {
			n := steps.Load()
			moved := n != seen
			seen = n
			return moved
		})
	})
	return RunJob(ctx, spec, rt, func(m any) {
		b, err := json.Marshal(m)
		if err == nil {
			out.Line(b)
		}
	})
}
