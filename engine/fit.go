package engine

import (
	"context"
	"math/rand/v2"

	"github.com/kairoscope/kairoscope/engine/features"
	"github.com/kairoscope/kairoscope/engine/model"
)

// epochFunc sees each epoch's net, training numbers and calibration
// outputs.
type epochFunc func(epoch int, net model.Trainer, st model.EpochStats, cal outputs) error

// fitted is a trained net with its early-stopping record.
type fitted struct {
	net       model.Trainer
	epochs    int // epochs run
	bestEpoch int // 0-indexed epoch whose parameters the net holds
}

// fit trains a new net on train for at most cfg.Epochs, stopping early when
// the calibration part's loss stops improving, and leaves the net with the
// best epoch's parameters. With an empty calibration part it trains
// cfg.Epochs and keeps the last. The caller closes the net.
func fit(ctx context.Context, cfg Config, sc features.Scaler, train, cal part, seed uint64, onEpoch epochFunc) (*fitted, error) {
	newTrainer := cfg.Trainer
	if newTrainer == nil {
		newTrainer = model.NewCPU
	}
	net, err := newTrainer(len(sc.Mean), cfg.Model, seed)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x73687566))
	stop := model.NewEarlyStopping(cfg.Patience, 1e-4)
	var best [][]float32
	var buf []float32
	f := &fitted{net: net}
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		st, err := net.Epoch(ctx, train.x, train.ys, rng)
		if err != nil {
			net.Close()
			return nil, err
		}
		f.epochs++
		var co outputs
		if len(cal.rows) > 0 {
			co, buf = predict(net, sc, cal, cfg.Model.BCEWeight, buf)
		}
		if onEpoch != nil {
			if err := onEpoch(epoch, net, st, co); err != nil {
				net.Close()
				return nil, err
			}
		}
		if len(cal.rows) == 0 {
			continue // nothing to stop on: the net keeps its last epoch
		}
		improved, halt := stop.Observe(epoch, co.loss)
		if improved {
			best = net.Snapshot()
		}
		if halt {
			break
		}
	}
	if best != nil {
		net.Restore(best)
	}
	if err := trainerErr(net); err != nil {
		net.Close()
		return nil, err
	}
	f.bestEpoch = stop.BestEpoch
	if len(cal.rows) == 0 {
		f.bestEpoch = f.epochs - 1
	}
	return f, nil
}

// trainerErr reports a device error that a Trainer's Forward, Snapshot or
// Restore could not return (they have no error result; a device executor
// keeps it and fills its outputs with NaN).
func trainerErr(t model.Trainer) error {
	if e, ok := t.(interface{ Err() error }); ok {
		return e.Err()
	}
	return nil
}
