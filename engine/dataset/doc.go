// Package dataset reads a daily series from CSV (date,value or OHLCV) and
// rejects bad input with errors that name the file, the line and the problem.
//
// A file has a header row with a date column and one or more number columns;
// one of them is the target. Rows must be sorted by date with no duplicates. A
// series is either daily (one row per calendar day, no gaps) or business-day
// (no row on a Saturday or Sunday, gaps allowed for holidays); Read infers
// which. Nothing is sorted, filled in or dropped silently: a file that does
// not meet these rules is rejected with an *Error whose Err matches one of the
// package's sentinels (ErrBadNumber, ErrGap, ...) under errors.Is.
//
// It imports only the standard library; it must not import the rest of
// Kairoscope, which builds on it.
package dataset
