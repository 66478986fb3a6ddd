package main

import (
	"context"

	"github.com/kairoscope/kairoscope/engine"
	"github.com/kairoscope/kairoscope/worker"
)

// runWorker runs one job spec read from stdin on the CPU, writing its
// messages as JSON lines on stdout (the worker protocol). The server
// starts it; it is not meant to be typed.
func runWorker(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "worker", "< spec.json")
	if err := parse(fs, args); err != nil {
		return err
	}
	spec, err := worker.Open(e.stdin, worker.ExitOrphanedWith(e.log))
	if err != nil {
		return err
	}
	e.log.Info().Str("kind", spec.Kind()).Str("dataset", spec.Dataset()).Msg("job")
	if err := engine.RunWorker(ctx, spec, engine.Runtime{Device: "cpu"}, e.stdout); err != nil {
		e.log.Error().Err(err).Msg("job failed")
		return err
	}
	return nil
}
