// Package report writes and reads the reports of a training job: one
// predictions CSV per fold and summary.json. Every file is written to a
// temporary name and renamed, so a reader never sees half a report.
package report
