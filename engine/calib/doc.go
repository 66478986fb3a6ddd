// Package calib calibrates p_up (raw, temperature, isotonic, temperature then
// isotonic), picks the method on a fold's calibration part, and builds
// split-conformal intervals from normalised residuals.
//
// Every result is pinned to a reference library by golden tests
// (testdata/golden.json, made by testdata/gen_golden.py): temperature scaling
// to scipy's bounded minimize_scalar, isotonic regression to scikit-learn's
// IsotonicRegression, the conformal quantile to the order statistic numpy
// picks.
//
// The package works on plain float64 slices and imports only the standard
// library. It must not import other kairoscope packages, WebSocket or CUDA
// code, so any engine stage (training, metrics, forecasting) can call it.
//
// Functions are pure and safe for concurrent use. Slices of different lengths
// where the same length is required are programming errors and panic.
package calib
