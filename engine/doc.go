// Package engine runs a whole training job on the CPU: it loads a series,
// builds walk-forward folds, trains the model of package model on each,
// calibrates p_up and the conformal intervals, computes every metric of the
// training schema and writes the reports. Progress leaves through Hooks as
// schema messages; renderers (progress bar, JSON lines, the hub) attach from
// outside and never slow the loop.
//
// Packages below engine depend only downward: dataset → features → ops →
// model → metrics/calib → report. None of them imports WebSocket or CUDA code.
package engine
