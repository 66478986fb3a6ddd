// Package calib calibrates p_up (raw, temperature, isotonic, temperature then
// isotonic), picks the method on a fold's calibration part, and builds
// split-conformal intervals from normalised residuals.
package calib
