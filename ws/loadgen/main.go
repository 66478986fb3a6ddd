package loadgen

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Main is the loadgen command: flags to Config, Run, the Result as JSON
// on stdout, an error when a check failed.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.StringVar(&cfg.Kairoscope, "kairoscope", "bin/kairoscope", "the kairoscope binary (make build)")
	fs.IntVar(&cfg.Clients, "clients", 1000, "healthy /ws clients, each parsing every frame")
	fs.IntVar(&cfg.Slow, "slow", 10, "/ws clients that never read: each must be closed with 4008")
	fs.StringVar(&cfg.Run, "run", DefaultRun, "the run request")
	fs.BoolVar(&cfg.Baseline, "baseline", false, "first time the same run with no client")
	fs.IntVar(&cfg.Predict, "predict", 100, "/ws/predict clients, after the run")
	fs.IntVar(&cfg.Forecasts, "forecasts", 3, "distinct forecasts they ask for")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "bound on the whole load")
	serveArgs := fs.String("serve-args", "", "more serve flags, space-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.ServeArgs = strings.Fields(*serveArgs)
	res, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(res)
	if err := res.Check(); err != nil {
		return fmt.Errorf("checks failed: %w", err)
	}
	return nil
}
