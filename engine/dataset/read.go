package dataset

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options control how a file is read. The zero value picks the target column
// from the header and sets no minimum length.
type Options struct {
	Target  string // target column; "" = "close" for OHLCV files, else "value", else the only non-date column
	MinRows int    // fewer data rows than this is an error (ErrTooFewRows); 0 = no minimum
}

// Load reads the series in the file at path. The Series is named after the
// file's base name, but errors name path as given so that the user can find
// the file. A file that cannot be opened gives the *fs.PathError of os.Open.
func Load(path string, opt Options) (*Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := Read(f, filepath.Base(path), opt)
	var e *Error
	if errors.As(err, &e) {
		e.File = path
	}
	return s, err
}

// Read reads a series from CSV. name is used for Series.Name and in errors.
// Every error is an *Error; those about the input wrap one of the sentinels.
func Read(r io.Reader, name string, opt Options) (*Series, error) {
	s, err := read(r, opt)
	if err != nil {
		err.File = name
		return nil, err
	}
	s.Name = name
	return s, nil
}

// columns says where a file keeps what Read needs.
type columns struct {
	names  []string // the header, trimmed and lower case
	date   int
	target int
	number []int // the columns that must hold numbers, target included
	ohlcv  bool
}

func read(r io.Reader, opt Options) (*Series, *Error) {
	// Spreadsheet exports often start with a UTF-8 byte order mark; csv
	// would make it part of the first column name.
	br := bufio.NewReader(r)
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\uFEFF")) {
		br.Discard(3)
	}
	// FieldsPerRecord stays 0: every row must have as many fields as the header.
	cr := csv.NewReader(br)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fail(0, "", ErrEmpty, "the file is empty")
	}
	if err != nil {
		return nil, csvError(err)
	}
	headerLine, _ := cr.FieldPos(0) // 1 unless blank lines come first
	c, e := findColumns(header, headerLine, opt.Target)
	if e != nil {
		return nil, e
	}

	var (
		dates  []time.Time
		values []float64
		lines  []int // the line of each row, for errors found after reading
	)
	// at locates err in column col of the row just read.
	at := func(col int, err error) *Error {
		line, _ := cr.FieldPos(col)
		return &Error{Line: line, Column: c.names[col], Err: err}
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && errors.Is(err, csv.ErrFieldCount) {
			if strings.TrimSpace(strings.Join(rec, "")) == "" {
				continue // a line of spaces, typically at the end of the file
			}
			return nil, fail(pe.StartLine, "", ErrRowLength, "has %d fields, the header has %d", len(rec), len(header))
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := cr.FieldPos(c.date)
		d, err := parseDate(strings.TrimSpace(rec[c.date]))
		if err != nil {
			return nil, at(c.date, err)
		}
		// Sorting silently would hide a file assembled wrongly, so refuse.
		if n := len(dates); n > 0 {
			switch prev := dates[n-1]; {
			case d.Equal(prev):
				return nil, at(c.date, newProblem(ErrDuplicateDate, "date %s repeats line %d", day(d), lines[n-1]))
			case d.Before(prev):
				return nil, at(c.date, newProblem(ErrUnsorted, "date %s comes before %s on line %d; rows must be sorted by date",
					day(d), day(prev), lines[n-1]))
			}
		}
		var v float64
		for _, col := range c.number {
			x, err := parseNumber(strings.TrimSpace(rec[col]))
			if err != nil {
				return nil, at(col, err)
			}
			if col == c.target {
				v = x
			}
		}
		dates, values, lines = append(dates, d), append(values, v), append(lines, line)
	}
	if len(dates) == 0 {
		return nil, fail(0, "", ErrEmpty, "the file has a header but no data rows")
	}

	freq, e := frequency(dates, lines)
	if e != nil {
		return nil, e
	}
	if len(dates) < opt.MinRows {
		return nil, fail(0, "", ErrTooFewRows, "has %d rows, at least %d are needed", len(dates), opt.MinRows)
	}
	counts := true
	for _, v := range values {
		counts = counts && v >= 0 && v == math.Trunc(v)
	}
	return &Series{
		Dates:  dates,
		Values: values,
		Target: c.names[c.target],
		OHLCV:  c.ohlcv,
		Freq:   freq,
		Counts: counts,
	}, nil
}

// findColumns checks the header and picks the target column: the one named
// by target, else close in an OHLCV file, else value, else the only column
// besides date.
func findColumns(header []string, line int, target string) (columns, *Error) {
	c := columns{names: header}
	index := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		header[i] = h
		if h == "" {
			return c, fail(line, "", ErrBadHeader, "column %d has no name", i+1)
		}
		if j, dup := index[h]; dup {
			return c, fail(line, h, ErrBadHeader, "the name appears twice (columns %d and %d)", j+1, i+1)
		}
		index[h] = i
	}
	has := func(name string) bool { _, ok := index[name]; return ok }
	names := strings.Join(header, ",")
	if !has("date") {
		return c, fail(line, "", ErrMissingColumn, "missing column %q (header: %s)", "date", names)
	}
	c.date = index["date"]
	c.ohlcv = has("open") && has("high") && has("low") && has("close")

	target = strings.ToLower(strings.TrimSpace(target))
	switch {
	case target == "date":
		return c, fail(line, target, ErrUnknownColumn, "holds the dates, not values; choose another target (header: %s)", names)
	case target != "":
		if !has(target) {
			return c, fail(line, target, ErrUnknownColumn, "not in the header (header: %s)", names)
		}
	case c.ohlcv:
		target = "close"
	case has("value"):
		target = "value"
	case len(header) == 2:
		target = header[1-c.date]
	default:
		return c, fail(line, "", ErrMissingColumn,
			`no target column: looked for "close" (with open, high, low), "value", or a single column besides "date" (header: %s); name the target column`, names)
	}
	c.target = index[target]

	// Only the target must be a number, except in OHLCV files, whose price
	// and volume columns are all checked: a broken one means a broken row.
	ohlcv := []string{"open", "high", "low", "close", "volume"} // volume is optional
	for i, h := range header {
		if i == c.target || c.ohlcv && slices.Contains(ohlcv, h) {
			c.number = append(c.number, i)
		}
	}
	return c, nil
}

// frequency infers the calendar of a sorted series. A series with no weekend
// row and at least one gap is BusinessDay, whatever the gaps' lengths
// (holidays, closures). Any other series is Daily and must have no gap.
func frequency(dates []time.Time, lines []int) (Frequency, *Error) {
	weekend, gap := -1, -1 // index of the first weekend row, of the first row after a gap
	for i, d := range dates {
		if weekend < 0 && isWeekend(d) {
			weekend = i
		}
		if gap < 0 && i > 0 && daysBetween(dates[i-1], d) > 1 {
			gap = i
		}
	}
	switch {
	case gap < 0:
		return Daily, nil
	case weekend < 0:
		return BusinessDay, nil
	}
	from, to := dates[gap-1].AddDate(0, 0, 1), dates[gap].AddDate(0, 0, -1)
	missing := day(from)
	if !to.Equal(from) {
		missing += ".." + day(to)
	}
	return Daily, fail(lines[gap], "", ErrGap,
		"no row for %s; daily series must be complete (line %d falls on a %s, so this is not a business-day series)",
		missing, lines[weekend], dates[weekend].Weekday())
}

// daysBetween counts calendar days from a to b, both UTC midnights. It avoids
// time.Duration, which saturates for spans of more than 292 years.
func daysBetween(a, b time.Time) int64 { return (b.Unix() - a.Unix()) / (24 * 60 * 60) }

func day(t time.Time) string { return t.Format(time.DateOnly) }

// parseDate reads an ISO date. Timestamps are accepted when they are at
// midnight, because some tools write dates that way; any other time of day
// means intraday data, which a daily model would silently mangle.
func parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, newProblem(ErrBadDate, "empty field, want a date (YYYY-MM-DD)")
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{time.DateTime, time.RFC3339} {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if h, m, sec := t.Clock(); h != 0 || m != 0 || sec != 0 || t.Nanosecond() != 0 {
			return time.Time{}, newProblem(ErrBadDate, "%q is not at midnight: intraday data is not supported", s)
		}
		// The calendar date as written, in the timestamp's own offset.
		y, mo, d := t.Date()
		return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC), nil
	}
	return time.Time{}, newProblem(ErrBadDate, "cannot parse %q as a date (want YYYY-MM-DD)", s)
}

// parseNumber reads a finite decimal number.
func parseNumber(s string) (float64, error) {
	if s == "" {
		return 0, newProblem(ErrBadNumber, "empty field, want a number")
	}
	// ParseFloat also takes Go literals such as 0x1p4 and 1_000, which no
	// CSV writer produces: reading them would hide a corrupted field.
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) || strings.ContainsAny(s, "_xX") {
		return 0, newProblem(ErrBadNumber, "cannot parse %q as a number", s)
	}
	// Out of range parses as ±Inf; NaN and Inf are spelled out.
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, newProblem(ErrNonFinite, "%q is not a finite number", s)
	}
	return v, nil
}

// csvError turns an error from csv.Reader into an *Error.
func csvError(err error) *Error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fail(pe.Line, "", ErrSyntax, "malformed CSV: %v", pe.Err)
	}
	return &Error{Err: fmt.Errorf("read: %w", err)}
}
