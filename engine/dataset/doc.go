// Package dataset reads a daily series from CSV (date,value or OHLCV) and
// rejects bad input with errors that name the file, the line and the problem.
// It imports only the standard library.
package dataset
