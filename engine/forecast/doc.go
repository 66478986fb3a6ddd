// Package forecast trains on a whole history and forecasts the next H days
// with calibrated intervals in the series' own unit, and backtests that
// forecast from rolling origins (sCRPS and coverage per horizon).
package forecast
