package datasets

import (
	"errors"
	"fmt"

	"github.com/kairoscope/kairoscope/engine/dataset"
)

// Sentinels for what the Store refuses; test with errors.Is. The server
// maps them to HTTP statuses (ws/datasets.go).
var (
	ErrBadName      = errors.New("bad dataset name")         // not a short identifier (400)
	ErrNotFound     = errors.New("unknown dataset")          // no such dataset (404; 400 for a run)
	ErrReadOnly     = errors.New("read-only dataset")        // an embedded dataset, or no folder (403)
	ErrExists       = errors.New("dataset exists")           // an upload that would replace without asking (409)
	ErrInUse        = errors.New("dataset in use")           // a delete while jobs use it (409)
	ErrBroken       = errors.New("dataset does not load")    // a file in the folder that does not load (409)
	ErrTooLarge     = errors.New("too large")                // beyond Options.MaxBytes (413)
	ErrInvalid      = errors.New("invalid data")             // an upload or rows that do not load; an *InvalidError (400)
	ErrHashMismatch = errors.New("data hash does not match") // a job's bytes are not the version it was started on
)

// InvalidError is data that the loader refuses: an upload, or rows to
// append. Err is the loader's *dataset.Error (or one written like it) and
// says where and what; Problem holds the same in fields. It matches
// ErrInvalid and, through Err, the loader's sentinels (dataset.ErrBadDate,
// ...).
type InvalidError struct {
	Problem Problem
	Err     error
}

func (e *InvalidError) Error() string   { return e.Err.Error() }
func (e *InvalidError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// Problem locates what is wrong with a file, or with rows to append: the
// file (or "rows" for the body of an append, "row N" for its N-th JSON
// row), the 1-based line (0 when not about one line), the column ("" when
// not about one) and the problem in words.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Row     int    `json:"row,omitempty"` // the 1-based row of a JSON append
	Column  string `json:"column,omitempty"`
	Problem string `json:"problem"`
}

// problemOf describes err, a *dataset.Error when the loader made it.
func problemOf(err error) Problem {
	var de *dataset.Error
	if errors.As(err, &de) {
		p := Problem{File: de.File, Line: de.Line, Column: de.Column}
		if de.Err != nil {
			p.Problem = de.Err.Error()
		}
		return p
	}
	return Problem{Problem: err.Error()}
}

func invalid(err error) *InvalidError { return &InvalidError{Problem: problemOf(err), Err: err} }

// problem is a message written for the user that still matches its
// sentinel, as in engine/dataset.
type problem struct {
	kind error
	msg  string
}

func (p *problem) Error() string { return p.msg }
func (p *problem) Unwrap() error { return p.kind }

// located returns an *dataset.Error in file at line and column, of kind.
func located(file string, line int, column string, kind error, format string, args ...any) *dataset.Error {
	return &dataset.Error{File: file, Line: line, Column: column, Err: &problem{kind: kind, msg: fmt.Sprintf(format, args...)}}
}
