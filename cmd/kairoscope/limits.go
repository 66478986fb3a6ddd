package main

import (
	"flag"
	"time"

	"github.com/kairoscope/kairoscope/agent"
	"github.com/kairoscope/kairoscope/worker"
)

// jobLimitFlags are an agent's limits on the jobs it runs (serve's local
// agent and kairoscope agent): see agent.Config and worker.Runner.
type jobLimitFlags struct {
	maxRunTime, maxForecastTime, workerSilence time.Duration
	maxJobBytes                                int64
	workerLogLines                             int
}

func addJobLimitFlags(fs *flag.FlagSet) *jobLimitFlags {
	f := &jobLimitFlags{}
	fs.DurationVar(&f.maxRunTime, "max-run-time", agent.DefaultMaxRunTime, "wall-clock limit of one attempt of a training run: past it the worker is stopped and the run fails naming the limit (negative: none)")
	fs.DurationVar(&f.maxForecastTime, "max-forecast-time", agent.DefaultMaxForecastTime, "wall-clock limit of a forecast (negative: none)")
	fs.Int64Var(&f.maxJobBytes, "max-job-bytes", agent.DefaultMaxJobBytes, "bytes of messages one attempt of a job may write to its log: a worker flooding stdout is stopped there (negative: none)")
	fs.DurationVar(&f.workerSilence, "worker-silence", worker.DefaultMaxSilence, "a worker that writes nothing for this long (not even the keepalive a progressing job writes) is presumed hung: stopped, its job fails (negative: never)")
	fs.IntVar(&f.workerLogLines, "worker-log-lines", worker.DefaultLogLines, "stderr lines a second relayed from each worker to the log; more are counted, not logged (negative: all)")
	return f
}

func (f *jobLimitFlags) apply(cfg *agent.Config, r *worker.Runner) {
	cfg.MaxRunTime, cfg.MaxForecastTime, cfg.MaxJobBytes = f.maxRunTime, f.maxForecastTime, f.maxJobBytes
	r.MaxSilence, r.LogLines = f.workerSilence, f.workerLogLines
}
