package dataset

import (
	"strconv"
	"time"
)

// Frequency says which calendar a series follows; Future uses it to extend the
// dates.
type Frequency int

const (
	// Daily has one row per calendar day with no gaps.
	Daily Frequency = iota
	// BusinessDay has no row on a Saturday or Sunday; gaps between weekdays
	// (exchange holidays, closures) are allowed.
	BusinessDay
)

func (f Frequency) String() string {
	switch f {
	case Daily:
		return "daily"
	case BusinessDay:
		return "business-day"
	}
	return "Frequency(" + strconv.Itoa(int(f)) + ")"
}

// Series is one validated time series. Read never returns a Series with fewer
// than one row; Dates and Values always have the same length.
type Series struct {
	Name   string      // base name of the file (or the name given to Read)
	Dates  []time.Time // UTC midnight, strictly increasing
	Values []float64   // the target column, all finite
	Target string      // the target column's name, lower case
	OHLCV  bool        // the file has open,high,low,close (volume optional) columns
	Freq   Frequency
	Counts bool // every value is a non-negative integer (affluence data: counts)
}

// Len returns the number of rows.
func (s *Series) Len() int { return len(s.Dates) }

// Future returns the n dates that follow the last one: consecutive days for a
// Daily series, weekdays for a BusinessDay series (a Friday is followed by the
// next Monday; holidays are not known, so none are skipped). It returns nil
// when n <= 0 or the series is empty.
func (s *Series) Future(n int) []time.Time {
	if n <= 0 || len(s.Dates) == 0 {
		return nil
	}
	out := make([]time.Time, 0, n)
	d := s.Dates[len(s.Dates)-1]
	for len(out) < n {
		d = d.AddDate(0, 0, 1)
		if s.Freq == BusinessDay && isWeekend(d) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func isWeekend(d time.Time) bool {
	wd := d.Weekday()
	return wd == time.Saturday || wd == time.Sunday
}
