// Package features turns a series into model rows (features at t, the change
// to t+h as target), splits them into walk-forward folds and standardises
// them with statistics from each fold's training part only.
package features
