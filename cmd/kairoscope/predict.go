package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/kairoscope/kairoscope/engine"
)

const epochRowsUsage = "rows of (day, horizon) each training epoch draws at random from the history, at least a tenth of them (0 = all of them)"

const refitUsage = "train each net again on the whole history for the epochs early stopping chose on the held-out days (--refit=false: forecast with the early-stopped nets)"

func runPredict(ctx context.Context, e *env, args []string) error {
	cfg := engine.ForecastDefaults()
	fs := newFlags(e, "predict", "--data FILE [--horizon 30]")
	mf := addModelFlags(fs, &cfg)
	horizon := fs.Int("horizon", 30, "days to forecast")
	fs.IntVar(&cfg.Ensemble, "ensemble", cfg.Ensemble, "independently seeded nets averaged into the forecast")
	fs.BoolVar(&cfg.ForecastRefit, "refit", cfg.ForecastRefit, refitUsage)
	fs.IntVar(&cfg.Model.EpochRows, "epoch-rows", cfg.Model.EpochRows, epochRowsUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := mf.apply(&cfg)
	if err != nil {
		return err
	}
	e.log.Info().Str("data", mf.data).Int("rows", s.Len()).Int("horizon", *horizon).Msg("forecasting")
	pts, err := engine.Forecast(ctx, s, cfg, *horizon, func(step, total int) {
		e.log.Debug().Int("step", step).Int("total_step", total).Msg("epoch")
	})
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(engine.Payload(pts, s.Counts), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", out)
	return err
}

func runBacktest(ctx context.Context, e *env, args []string) error {
	cfg := engine.ForecastDefaults()
	fs := newFlags(e, "backtest", "--data FILE [--horizon 30] [--first 180] [--step 30]")
	mf := addModelFlags(fs, &cfg)
	horizon := fs.Int("horizon", 30, "days forecast from each origin")
	first := fs.Int("first", 180, "the first origin is this many rows before the end")
	step := fs.Int("step", 30, "rows between origins")
	fs.IntVar(&cfg.Ensemble, "ensemble", cfg.Ensemble, "independently seeded nets averaged into each forecast")
	fs.BoolVar(&cfg.ForecastRefit, "refit", cfg.ForecastRefit, refitUsage)
	fs.IntVar(&cfg.Model.EpochRows, "epoch-rows", cfg.Model.EpochRows, epochRowsUsage)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := mf.apply(&cfg)
	if err != nil {
		return err
	}
	bt, err := engine.RunBacktest(ctx, s, cfg, *horizon, *first, *step, func(k, of int) {
		e.log.Info().Int("origin", k+1).Int("of", of).Msg("backtest")
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(bt)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "horizon\tsCRPS\tcoverage\tnaive sCRPS\tnaive coverage\t")
	for _, h := range bt.Horizons {
		fmt.Fprintf(tw, "%d\t%.3f\t%.2f\t%.3f\t%.2f\t\n", h.Horizon, h.SCRPS, h.Coverage, h.NaiveSCRPS, h.NaiveCoverage)
	}
	fmt.Fprintf(tw, "mean\t%.3f\t%.3f\t%.3f\t%.3f\t\n", bt.SCRPS, bt.Coverage, bt.NaiveSCRPS, bt.NaiveCoverage)
	return tw.Flush()
}
