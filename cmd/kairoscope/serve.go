package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kairoscope/kairoscope/agent"
	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/engine/ops"
	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/ws"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func runServe(ctx context.Context, e *env, args []string) error {
	cfg := ws.DefaultConfig()
	cfg.Version = version
	fs := newFlags(e, "serve", "[--addr localhost:8000] [--token T] [--tls-cert F --tls-key F] [--nats URL] [--data-dir DIR] [--train-on-start]")
	addr := fs.String("addr", defaultAddr, "address to listen on; localhost:PORT listens on 127.0.0.1 and ::1, 0.0.0.0:PORT on every interface (then set --token)")
	fs.StringVar(&cfg.Token, "token", os.Getenv("KAIROSCOPE_TOKEN"), "require this token on every request (default $KAIROSCOPE_TOKEN)")
	origins := fs.String("allowed-origins", "", "comma-separated Origins whose pages may use the server besides its own and localhost's (\"*\": any page, \"null\": file: pages and sandboxed frames)")
	hosts := fs.String("allowed-hosts", "", "comma-separated names the Host header may carry besides localhost and IP addresses (.example.com: its subdomains; \"*\": any, which lets DNS-rebound pages in)")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS and WSS with this PEM certificate (chain); with --tls-key")
	tlsKey := fs.String("tls-key", "", "the PEM private key of --tls-cert")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout, "time a request has to send its headers")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "time a request has to send its headers and body (an upload); past it the connection is closed")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "time an answer has to be written (WebSockets excepted)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "an idle keep-alive connection is closed after this")
	fs.IntVar(&cfg.MaxHeaderBytes, "max-header-bytes", cfg.MaxHeaderBytes, "largest request header; more gets 431")
	fs.Int64Var(&cfg.MaxBody, "max-body-bytes", cfg.MaxBody, "largest REST request body but a dataset's (a run request); more gets 400")
	fs.StringVar(&cfg.Device, "device", schema.DeviceAuto, "device for runs and forecasts: auto (GPU when an agent has one, else CPU), cpu, gpu (never falls back)")
	fs.StringVar(&cfg.OnOOM, "on-oom", schema.OnOOMFail, "when the GPU runs out of memory: fail (training_error) or halve (retry the fold with half the batch, up to 3 times); a run's on_oom overrides it")
	fs.IntVar(&cfg.MaxQueuedRuns, "max-queued-runs", cfg.MaxQueuedRuns, "training runs waiting for an agent; more are refused with 429")
	fs.IntVar(&cfg.MaxQueuedForecasts, "max-queued-forecasts", cfg.MaxQueuedForecasts, "forecasts waiting for an agent; more are refused with 503")
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "concurrent WebSocket connections; more get 503")
	fs.Int64Var(&cfg.Hub.MaxMessageBytes, "max-message-bytes", cfg.Hub.MaxMessageBytes, "largest message a client may send")
	fs.IntVar(&cfg.Hub.SendQueue, "send-queue", cfg.Hub.SendQueue, "live messages queued per client before a slow client is closed (4008)")
	fs.IntVar(&cfg.Hub.KeepEnded, "keep-ended", cfg.Hub.KeepEnded, "ended runs whose history stays in memory; older ones are read back from the log when asked for")
	fs.IntVar(&cfg.Hub.History, "history-messages", cfg.Hub.History, "messages of one run kept in memory for clients joining later; older ones are read back from the log, or a client is told what it missed")
	fs.Int64Var(&cfg.Hub.StreamBytes, "history-run-bytes", cfg.Hub.StreamBytes, "bytes of one run's history kept in memory; past it the oldest messages go")
	fs.Int64Var(&cfg.Hub.TotalBytes, "history-bytes", cfg.Hub.TotalBytes, "bytes of history kept in memory for all runs together (each of /ws and /ws/predict); past it ended runs go first, oldest first")
	fs.Float64Var(&cfg.MaxRunCost, "max-run-cost", cfg.MaxRunCost, "largest estimated cost of a run request, trials × folds × epochs × samples × weights; more gets 400 (about 1.5e10 a second on 2 cores)")
	fs.IntVar(&cfg.RunsPerMinute, "runs-per-minute", cfg.RunsPerMinute, "jobs (runs and new forecasts) one client IP may start a minute, after --run-burst; more get 429")
	fs.IntVar(&cfg.RunBurst, "run-burst", cfg.RunBurst, "jobs one client IP may start at once")
	fs.DurationVar(&cfg.ForecastGrace, "forecast-grace", cfg.ForecastGrace, "a forecast whose clients have all left is cancelled after this, unless one rejoins")
	trainOnStart := fs.Bool("train-on-start", false, "start a training run on the default dataset at launch")
	datasetsDir := fs.String("datasets", "", "folder of CSV datasets (NAME.csv), created when missing (default DATA-DIR/datasets); the embedded bike, sp500 and transit are always there, read-only")
	maxDatasetBytes := fs.Int64("max-dataset-bytes", datasets.DefaultMaxBytes, "largest dataset file an upload or an append may leave; more gets 413")
	lf := addLogFlags(fs)
	lf.addServeFlags(fs)
	af := addAgentFlags(fs, e)
	localAgent := fs.Bool("local-agent", true, "run an agent inside this process, taking jobs as a `kairoscope agent` does (false: agents elsewhere only)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *origins != "" {
		cfg.AllowedOrigins = strings.Split(*origins, ",")
	}
	if *hosts != "" {
		cfg.AllowedHosts = strings.Split(*hosts, ",")
	}
	tlsCfg, err := loadTLS(*tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	switch cfg.Device {
	case schema.DeviceAuto, schema.DeviceCPU, schema.DeviceGPU:
	default:
		return usageError{fmt.Errorf("--device: want auto, cpu or gpu, got %q", cfg.Device)}
	}
	if cfg.OnOOM != schema.OnOOMFail && cfg.OnOOM != schema.OnOOMHalve {
		return usageError{fmt.Errorf("--on-oom: want fail or halve, got %q", cfg.OnOOM)}
	}
	if *maxDatasetBytes < 1 {
		return usageError{fmt.Errorf("--max-dataset-bytes: want a positive size, got %d", *maxDatasetBytes)}
	}
	store, err := openDatasets(e, dataPath(*datasetsDir, lf.dataDir, "datasets"), *maxDatasetBytes)
	if err != nil {
		return err
	}
	cfg.Datasets = store
	runner, err := newRunner(e)
	if err != nil {
		return err
	}
	cfg.Devices = []ws.DeviceStatus{{Name: "cpu", OK: true}}
	if runner.GPU == nil {
		cfg.Devices = append(cfg.Devices, ws.DeviceStatus{Name: "gpu", Error: cudaWorkerName + " is not installed beside kairoscope (agents elsewhere may have one)"})
	} else {
		cfg.Devices = append(cfg.Devices, ws.DeviceStatus{Name: "gpu", OK: true, Error: "checked when a job starts: " + runner.GPU.Path})
	}

	conn, err := lf.connect(e, "kairoscope serve")
	if err != nil {
		return err
	}
	defer conn.close()
	l, err := runlog.Open(ctx, conn.nc, lf.config(), e.log)
	if err != nil {
		return err
	}

	reg := newRegistry()
	cfg.Metrics = metricsHandler(reg)
	var local *agent.Agent
	if *localAgent {
		a, err := af.agent(e, l, runner, lf.dataDir, agentMetrics(reg))
		if err != nil {
			return err
		}
		local = a
	}
	lns, err := listen(*addr, tlsCfg) // listen.go
	if err != nil {
		return err
	}
	srv := ws.NewServer(cfg, l, e.log)
	reg.MustRegister(srv.Collector())
	srvCtx, stopSrv := context.WithCancel(context.Background())
	defer stopSrv()
	stopped := make(chan struct{})
	go func() { srv.Run(srvCtx); close(stopped) }()
	agentCtx, stopAgent := context.WithCancel(context.Background())
	defer stopAgent()
	agentDone := make(chan struct{})
	go func() {
		defer close(agentDone)
		if local == nil {
			return
		}
		if err := local.Run(agentCtx); err != nil {
			e.log.Error().Err(err).Msg("local agent")
		}
	}()
	if local != nil {
		// Runs asking for its classes are accepted from the first request.
		select {
		case <-local.Ready():
		case <-agentDone:
		}
	}
	httpSrv := srv.HTTPServer()
	var addrs []string
	for _, ln := range lns {
		addrs = append(addrs, ln.Addr().String())
	}
	e.log.Info().Str("addr", addrs[0]).Strs("addrs", addrs).Bool("tls", tlsCfg != nil).Str("version", version).Strs("datasets", datasetNames(e, store)).Str("datasets_dir", store.Dir()).
		Str("device", cfg.Device).Bool("gpu_worker", runner.GPU != nil).Str("cpu_blas", ops.BLAS()).
		Str("nats", conn.describe()).Bool("local_agent", *localAgent).Msg("kairoscope listening")
	switch {
	case allLoopback(lns):
	case cfg.Token == "":
		e.log.Warn().Strs("addrs", addrs).Msg("listening beyond loopback without --token: anyone who can reach this port can start, cancel and read runs and datasets (browsers' pages are refused, programs are not)")
	case tlsCfg == nil:
		e.log.Warn().Strs("addrs", addrs).Msg("listening beyond loopback without --tls-cert: the token and the data travel in clear")
	}
	serveErr := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { serveErr <- httpSrv.Serve(ln) }()
	}
	if *trainOnStart {
		if rec, err := srv.StartRun(ctx, schema.RunRequest{Dataset: datasets.Default}); err != nil {
			e.log.Error().Err(err).Msg("training on start")
		} else {
			e.log.Info().Str("run_id", rec.ID).Msg("training on start")
		}
	}
	var serveFailed error
	select {
	case err := <-serveErr:
		serveFailed = fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	// The agent first: it stops its workers and hands their runs back to
	// the queue, and the clients hear of it before their close frame.
	e.log.Info().Msg("shutting down: stopping workers, handing runs back, closing clients")
	stopAgent()
	<-agentDone
	stopSrv()
	<-stopped
	// A request still sending its body after 5 s is cut: it cannot hold the
	// exit, nor make it fail.
	if err := ws.Shutdown(httpSrv, 5*time.Second, e.log); err != nil {
		return err
	}
	if serveFailed != nil {
		return serveFailed
	}
	e.log.Info().Msg("stopped")
	return nil
}

// commitPauseEnv names a test hook: with a duration in it, every dataset
// write logs "dataset write paused before commit" and sleeps that long
// between writing the new file and renaming it into place, so that a test
// can kill the server there. Not for production.
const commitPauseEnv = "KAIROSCOPE_TEST_COMMIT_PAUSE"

// openDatasets opens the datasets folder (creating it) and removes the
// version copies no job holds: a job queued before a restart reads its
// version from the log's object store.
func openDatasets(e *env, dir string, maxBytes int64) (*datasets.Store, error) {
	opt := datasets.Options{MaxBytes: maxBytes}
	if v := os.Getenv(commitPauseEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("$%s: %w", commitPauseEnv, err)
		}
		opt.BeforeCommit = func(tmp string) {
			e.log.Warn().Str("tmp", tmp).Dur("pause", d).Msg("dataset write paused before commit")
			time.Sleep(d)
		}
	}
	store, err := datasets.Open(dir, opt)
	if err != nil {
		return nil, fmt.Errorf("--datasets: %w", err)
	}
	if err := store.Prune(); err != nil {
		return nil, err
	}
	return store, nil
}

// datasetNames lists the datasets that load, for the start-up log line;
// those that do not are logged with their error (and listed so by GET
// /api/datasets): a bad file never stops the server.
func datasetNames(e *env, store *datasets.Store) []string {
	infos, err := store.List()
	if err != nil {
		e.log.Warn().Err(err).Msg("datasets folder")
	}
	var names []string
	for _, i := range infos {
		if i.Error == "" {
			names = append(names, i.Name)
		} else {
			e.log.Warn().Str("file", i.File).Str("error", i.Error).Msg("dataset does not load")
		}
	}
	return names
}

func loopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// dataPath is p, or DIR/name when p is empty.
func dataPath(p, dir, name string) string {
	if p != "" {
		return p
	}
	return filepath.Join(dir, name)
}
