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
	f := &fitted{net: net}
	if err := f.train(ctx, cfg, sc, train, cal, seed, onEpoch); err != nil {
		net.Close()
		return nil, err
	}
	return f, nil
}

// train runs fit's epochs on f.net.
func (f *fitted) train(ctx context.Context, cfg Config, sc features.Scaler, train, cal part, seed uint64, onEpoch epochFunc) error {
	net := f.net
	rng := rand.New(rand.NewPCG(seed, 0x73687566))
	stop := model.NewEarlyStopping(cfg.Patience, 1e-4)
	var best [][]float32
	var buf []float32
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		st, err := net.Epoch(ctx, train.x, train.ys, rng)
		if err != nil {
			return err
		}
		f.epochs++
		var co outputs
		if len(cal.rows) > 0 {
			if co, err = predict(net, sc, cal, cfg.Model.BCEWeight, &buf); err != nil {
				return err
			}
		}
		if onEpoch != nil {
			if err := onEpoch(epoch, net, st, co); err != nil {
				return err
			}
		}
		if len(cal.rows) == 0 {
			continue // nothing to stop on: the net keeps its last epoch
		}
		improved, halt := stop.Observe(epoch, co.loss)
		if improved {
			if best, err = net.Snapshot(); err != nil {
				return err
			}
		}
		if halt {
			break
		}
	}
	if best != nil {
		if err := net.Restore(best); err != nil {
			return err
		}
	}
	f.bestEpoch = stop.BestEpoch
	if len(cal.rows) == 0 {
		f.bestEpoch = f.epochs - 1
	}
	return nil
}
