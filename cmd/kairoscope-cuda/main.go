//go:build gpu

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/cublas"
	"github.com/kairoscope/kairoscope/engine"
	"github.com/kairoscope/kairoscope/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := zerolog.New(os.Stderr).With().Timestamp().Str("worker", "gpu").Logger()
	if len(os.Args) != 2 || os.Args[1] != "worker" {
		fmt.Fprintln(os.Stderr, "usage: kairoscope-cuda worker < spec.json\n\nThe GPU worker; kairoscope serve starts it (see kairoscope serve --help).")
		os.Exit(2)
	}
	if err := run(ctx, log); err != nil {
		log.Error().Err(err).Msg("job failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, log zerolog.Logger) error {
	spec, err := worker.Open(os.Stdin, worker.ExitOrphanedWith(log))
	if err != nil {
		return err
	}
	// Opening the device fails before any message, so the server can still
	// fall back to the CPU.
	dev, err := cuda.OpenGPU(0, cuda.GPUOptions{CUBLAS: os.Getenv(cublas.EnvPath)})
	if err != nil {
		return err
	}
	defer dev.Close()
	info := dev.Info()
	name := fmt.Sprintf("gpu: %s (compute capability %s, %.1f GiB)", info.Name, info.ComputeCapability, float64(info.TotalMemory)/(1<<30))
	log.Info().Str("device", name).Str("blas", info.BLAS).Str("driver", info.Driver).Str("kind", spec.Kind()).Msg("job")
	return engine.RunWorker(ctx, spec, engine.Runtime{Trainer: cuda.NewTrainer(dev), Device: name, Note: "Entraînement sur " + name}, os.Stdout)
}
