package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/engine/ops"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
	"github.com/kairoscope/kairoscope/ws"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// cudaWorkerName is the GPU worker binary looked for next to kairoscope.
const cudaWorkerName = "kairoscope-cuda"

func runServe(ctx context.Context, e *env, args []string) error {
	cfg := ws.ServerConfig{Config: ws.DefaultConfig(), Version: version}
	fs := newFlags(e, "serve", "[--addr 0.0.0.0:8000] [--token T] [--train-on-start]")
	addr := fs.String("addr", "0.0.0.0:8000", "address to listen on")
	fs.StringVar(&cfg.Token, "token", os.Getenv("KAIROSCOPE_TOKEN"), "require this token on every request (default $KAIROSCOPE_TOKEN)")
	origins := fs.String("allowed-origins", "", "comma-separated Origins allowed to open WebSockets (default: any)")
	fs.StringVar(&cfg.Runs.Reports, "reports", "reports", "folder for each run's reports (REPORTS/<run_id>/)")
	fs.StringVar(&cfg.Runs.Device, "device", worker.DeviceAuto, "device for runs: auto (GPU worker when installed, else CPU), cpu, gpu (never falls back)")
	fs.StringVar(&cfg.Runs.OnOOM, "on-oom", schema.OnOOMFail, "when the GPU runs out of memory: fail (training_error) or halve (retry the fold with half the batch, up to 3 times); a run's on_oom overrides it")
	fs.IntVar(&cfg.Runs.MaxConcurrentRuns, "max-concurrent-runs", 1, "training runs at once; others wait")
	fs.IntVar(&cfg.Runs.MaxQueuedRuns, "max-queued-runs", 8, "training runs waiting; more are refused with 429")
	fs.IntVar(&cfg.Predict.MaxQueued, "max-queued-forecasts", 8, "forecasts waiting for the pipeline; more are refused")
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "concurrent WebSocket connections; more get 503")
	fs.Int64Var(&cfg.MaxMessageBytes, "max-message-bytes", cfg.MaxMessageBytes, "largest message a client may send")
	fs.IntVar(&cfg.SendQueue, "send-queue", cfg.SendQueue, "messages queued per client before a slow client is closed")
	trainOnStart := fs.Bool("train-on-start", false, "start a training run on the default dataset at launch")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *origins != "" {
		cfg.AllowedOrigins = strings.Split(*origins, ",")
	}
	switch cfg.Runs.Device {
	case worker.DeviceAuto, worker.DeviceCPU, worker.DeviceGPU:
	default:
		return usageError{fmt.Errorf("--device: want auto, cpu or gpu, got %q", cfg.Runs.Device)}
	}
	cfg.Predict.Device = cfg.Runs.Device
	if cfg.Runs.OnOOM != schema.OnOOMFail && cfg.Runs.OnOOM != schema.OnOOMHalve {
		return usageError{fmt.Errorf("--on-oom: want fail or halve, got %q", cfg.Runs.OnOOM)}
	}
	runner, err := newRunner(e)
	if err != nil {
		return err
	}
	cfg.Devices = []ws.DeviceStatus{{Name: "cpu", OK: true}}
	if runner.GPU == nil {
		cfg.Devices = append(cfg.Devices, ws.DeviceStatus{Name: "gpu", Error: cudaWorkerName + " is not installed"})
	} else {
		cfg.Devices = append(cfg.Devices, ws.DeviceStatus{Name: "gpu", OK: true, Error: "checked when a job starts: " + runner.GPU.Path})
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *addr, err)
	}
	srv := ws.NewServer(ctx, cfg, runner, e.log)
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	e.log.Info().Str("addr", ln.Addr().String()).Str("version", version).Strs("datasets", datasets.Names()).
		Str("device", cfg.Runs.Device).Bool("gpu_worker", runner.GPU != nil).Str("cpu_blas", ops.BLAS()).Msg("kairoscope listening")
	if cfg.Token == "" && len(cfg.AllowedOrigins) == 0 && !loopback(ln.Addr()) {
		e.log.Warn().Str("addr", ln.Addr().String()).Msg("listening beyond loopback with neither --token nor --allowed-origins: anyone who can reach this port can start training runs")
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	stopped := make(chan struct{})
	go func() { srv.Run(ctx); close(stopped) }()
	if *trainOnStart {
		info, err := srv.Runs().Start(ctx, schema.RunRequest{Dataset: datasets.Default})
		if err != nil {
			return err
		}
		e.log.Info().Str("run_id", info.ID).Msg("training on start")
	}
	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	e.log.Info().Msg("shutting down: cancelling runs, closing clients")
	<-stopped // runs cancelled and their workers gone; clients got a close frame
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	e.log.Info().Msg("stopped")
	return nil
}

func loopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
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
