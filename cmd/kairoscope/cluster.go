package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kairoscope/kairoscope/agent"
	"github.com/kairoscope/kairoscope/engine/report"
	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/worker"
)

// cudaWorkerName is the GPU worker binary looked for next to kairoscope.
const cudaWorkerName = "kairoscope-cuda"

// logFlags say where the run log is: an embedded NATS server on a store
// in the data folder (the default), or an external cluster.
type logFlags struct {
	url, listen, dataDir string
	lease                time.Duration
	maxRetries, keepRuns int
	replicas             int
}

// addLogFlags adds the flags of every process on the log: serve and agent.
func addLogFlags(fs *flag.FlagSet) *logFlags {
	f := &logFlags{}
	fs.StringVar(&f.url, "nats", os.Getenv("KAIROSCOPE_NATS"), "NATS server URLs (comma-separated) of a cluster with JetStream (default $KAIROSCOPE_NATS; for serve, empty runs an embedded server storing in --data-dir)")
	fs.StringVar(&f.dataDir, "data-dir", "kairoscope-data", "folder for the embedded server's store (DIR/nats), reports (DIR/reports) and the agent's name")
	return f
}

// addServeFlags adds the flags that set up the log, which serve owns.
func (f *logFlags) addServeFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "nats-listen", "", "with the embedded server: also listen for agents of other processes on this address, e.g. 127.0.0.1:4222 (default: in-process only)")
	fs.DurationVar(&f.lease, "lease", 60*time.Second, "how long an agent may go silent before its run is given to another agent as a new attempt")
	fs.IntVar(&f.maxRetries, "max-retries", 2, "new attempts a run gets after losing its agent; one more loss fails it (0: none)")
	fs.IntVar(&f.keepRuns, "keep-runs", 1000, "ended runs kept (record, messages, reports); older ones are pruned")
	fs.IntVar(&f.replicas, "nats-replicas", 1, "replication factor of the log's streams and buckets: 3 on a three-node NATS cluster")
}

func (f *logFlags) config() runlog.Config {
	retries := f.maxRetries
	if retries == 0 {
		retries = -1 // runlog.Config: 0 is the default, negative none
	}
	return runlog.Config{Lease: f.lease, MaxRetries: retries, KeepRuns: f.keepRuns, Replicas: f.replicas}
}

// logConn is a connection to the run log's NATS, and the embedded server
// when there is one.
type logConn struct {
	nc  *nats.Conn
	emb *runlog.Embedded
	url string
}

func (f *logFlags) connect(e *env, name string) (*logConn, error) {
	if f.url != "" {
		nc, err := nats.Connect(f.url, runlog.ClientOptions(name)...)
		if err != nil {
			return nil, fmt.Errorf("connecting to NATS at %s: %w", redactURLs(f.url), err)
		}
		return &logConn{nc: nc, url: f.url}, nil
	}
	emb, err := runlog.StartEmbedded(filepath.Join(f.dataDir, "nats"), f.listen)
	if err != nil {
		return nil, err
	}
	nc, err := emb.Connect(name)
	if err != nil {
		emb.Shutdown()
		return nil, err
	}
	if u := emb.URL(); u != "" {
		e.log.Info().Str("url", u).Msg("embedded NATS listening for agents")
	}
	return &logConn{nc: nc, emb: emb}, nil
}

// describe says which NATS the process uses, for its log: never a
// password or token in the URL.
func (c *logConn) describe() string {
	if c.emb == nil {
		return redactURLs(c.url)
	}
	if u := c.emb.URL(); u != "" {
		return "embedded, " + u
	}
	return "embedded"
}

// close drains the connection (pending publishes go out), then stops the
// embedded server.
func (c *logConn) close() {
	c.nc.Drain()
	for i := 0; i < 100 && !c.nc.IsClosed(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	c.nc.Close()
	if c.emb != nil {
		c.emb.Shutdown()
	}
}

// agentFlags say what an agent takes and where it writes.
type agentFlags struct {
	name, reports, classes    string
	trainSlots, forecastSlots int
	limits                    *jobLimitFlags // limits.go
}

func addAgentFlags(fs *flag.FlagSet, e *env) *agentFlags {
	f := &agentFlags{}
	fs.StringVar(&f.name, "agent-name", "", "the agent's stable name (default: generated once and kept in DATA-DIR/agent-name)")
	fs.StringVar(&f.reports, "reports", "", "folder for each run's reports, REPORTS/<run_id>/ (default DATA-DIR/reports)")
	fs.StringVar(&f.classes, "classes", "", "device classes taken, in order of preference, from gpu, any, cpu (default: gpu,any,cpu with kairoscope-cuda beside kairoscope, else any,cpu)")
	fs.IntVar(&f.trainSlots, "max-concurrent-runs", 1, "training runs this agent runs at once (a run uses the whole machine)")
	fs.IntVar(&f.forecastSlots, "forecast-slots", 1, "forecasts this agent runs at once, beside its training runs")
	f.limits = addJobLimitFlags(fs)
	return f
}

func (f *agentFlags) agent(e *env, l *runlog.Log, runner *worker.Runner, dataDir string, m agent.Metrics) (*agent.Agent, error) {
	name, err := agentName(f.name, dataDir)
	if err != nil {
		return nil, err
	}
	// The workers stop themselves when this agent goes quiet for as long
	// as its lease: from then on another agent may run their jobs.
	runner.OrphanAfter = l.Config().Lease
	classes := []string{runlog.ClassAny, runlog.ClassCPU}
	if runner.GPU != nil {
		classes = []string{runlog.ClassGPU, runlog.ClassAny, runlog.ClassCPU}
	}
	if f.classes != "" {
		classes = nil
		for _, c := range strings.Split(f.classes, ",") {
			switch c = strings.TrimSpace(c); c {
			case runlog.ClassGPU, runlog.ClassAny, runlog.ClassCPU:
				classes = append(classes, c)
			default:
				return nil, usageError{fmt.Errorf("--classes: want gpu, any or cpu, got %q", c)}
			}
		}
		if slicesContains(classes, runlog.ClassGPU) && runner.GPU == nil {
			return nil, usageError{fmt.Errorf("--classes gpu needs %s beside kairoscope or in $KAIROSCOPE_CUDA_WORKER", cudaWorkerName)}
		}
	}
	slots := func(n int) int {
		if n <= 0 {
			return -1 // off
		}
		return n
	}
	cfg := agent.Config{Name: name, Version: version, Classes: classes, TrainSlots: slots(f.trainSlots),
		ForecastSlots: slots(f.forecastSlots), Reports: dataPath(f.reports, dataDir, "reports"), Cache: filepath.Join(dataDir, "cache")}
	// Found now, not after a run's first fold.
	if err := report.Probe(cfg.Reports); err != nil {
		return nil, fmt.Errorf("--reports: %w", err)
	}
	f.limits.apply(&cfg, runner)
	return agent.New(cfg, l, runner, m, e.log), nil
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// agentName returns name, or the one kept in dir/agent-name, made the
// first time: stable across restarts, so a restarted agent takes back its
// runs at once, and distinct for two agents on one host.
func agentName(name, dir string) (string, error) {
	if name != "" {
		return name, nil
	}
	file := filepath.Join(dir, "agent-name")
	if b, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) && err != nil {
		return "", fmt.Errorf("reading the agent's name: %w", err)
	}
	host, _ := os.Hostname()
	b := make([]byte, 3)
	rand.Read(b)
	name = host + "-" + hex.EncodeToString(b)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(file, []byte(name+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("keeping the agent's name: %w", err)
	}
	return name, nil
}

// newRunner starts CPU jobs with this very binary's worker command, and GPU
// jobs with kairoscope-cuda from $KAIROSCOPE_CUDA_WORKER or next to it.
func newRunner(e *env) (*worker.Runner, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the kairoscope binary for workers: %w", err)
	}
	r := &worker.Runner{CPU: worker.Command{Device: worker.DeviceCPU, Path: self, Args: []string{"worker"}}, Log: e.log}
	gpu := os.Getenv("KAIROSCOPE_CUDA_WORKER")
	if gpu == "" {
		gpu = filepath.Join(filepath.Dir(self), cudaWorkerName)
	}
	if st, err := os.Stat(gpu); err == nil && !st.IsDir() {
		r.GPU = &worker.Command{Device: worker.DeviceGPU, Path: gpu, Args: []string{"worker"}}
	}
	return r, nil
}
