package main

import (
	"context"
	"errors"

	"github.com/kairoscope/kairoscope/runlog"
)

// runAgent takes jobs from a NATS cluster's queues and runs them in worker
// processes on this machine, as serve's local agent does.
func runAgent(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "agent", "--nats URL [--max-concurrent-runs N] [--classes gpu,any,cpu]")
	lf := addLogFlags(fs)
	af := addAgentFlags(fs, e)
	metricsAddr := fs.String("metrics-addr", "", "serve GET /metrics (Prometheus) on this address, e.g. :9464 (default: none)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if lf.url == "" {
		return usageError{errors.New("--nats: an agent needs the URL of the NATS cluster its serve replicas use (or $KAIROSCOPE_NATS)")}
	}
	runner, err := newRunner(e)
	if err != nil {
		return err
	}
	conn, err := lf.connect(e, "kairoscope agent")
	if err != nil {
		return err
	}
	defer conn.close()
	l, err := runlog.Attach(ctx, conn.nc, e.log)
	if err != nil {
		return err
	}
	reg := newRegistry()
	a, err := af.agent(e, l, runner, lf.dataDir, agentMetrics(reg))
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		go func() {
			if err := serveMetrics(ctx, e, *metricsAddr, reg); err != nil {
				e.log.Error().Err(err).Msg("metrics")
			}
		}()
	}
	e.log.Info().Str("agent", a.Name()).Str("nats", conn.describe()).Bool("gpu_worker", runner.GPU != nil).Dur("lease", l.Config().Lease).Msg("kairoscope agent started")
	return a.Run(ctx)
}
