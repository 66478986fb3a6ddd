package dataset

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels for the kinds of bad input. Read returns them wrapped in an *Error
// that locates the problem; test with errors.Is.
var (
	ErrEmpty         = errors.New("no data rows")
	ErrSyntax        = errors.New("malformed CSV")
	ErrRowLength     = errors.New("wrong number of fields")
	ErrBadHeader     = errors.New("bad header")
	ErrMissingColumn = errors.New("missing column")
	ErrUnknownColumn = errors.New("unknown column")
	ErrBadDate       = errors.New("bad date")
	ErrBadNumber     = errors.New("bad number")
	ErrNonFinite     = errors.New("number is not finite")
	ErrDuplicateDate = errors.New("duplicate date")
	ErrUnsorted      = errors.New("dates out of order")
	ErrGap           = errors.New("gap in daily series")
	ErrTooFewRows    = errors.New("too few rows")
)

// Error locates a problem in an input file. Error() reads like
//
//	bike.csv:17: column "value": cannot parse "12,5" as a number
//	bike.csv:1: missing column "date" (header: day,value)
//
// Line is 1-based (the header is line 1) and 0 when the problem is not on one
// line, such as too few rows. Column is "" when the problem is not about one
// column.
type Error struct {
	File   string
	Line   int
	Column string
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Column != "" {
		fmt.Fprintf(&b, "column %q: ", e.Column)
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// problem is a message written for the user that still matches its sentinel
// under errors.Is. The sentinel's own text is left out of the message because
// the message already says the same thing more precisely.
type problem struct {
	kind error
	msg  string
}

func (p *problem) Error() string { return p.msg }
func (p *problem) Unwrap() error { return p.kind }

func newProblem(kind error, format string, args ...any) error {
	return &problem{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// fail returns an *Error at line and column; Read fills in the file name.
func fail(line int, column string, kind error, format string, args ...any) *Error {
	return &Error{Line: line, Column: column, Err: newProblem(kind, format, args...)}
}
