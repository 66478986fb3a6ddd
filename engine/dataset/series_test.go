package dataset

import (
	"slices"
	"testing"
	"time"
)

func TestFuture(t *testing.T) {
	days := func(ss ...string) []time.Time {
		out := make([]time.Time, len(ss))
		for i, s := range ss {
			out[i] = date(s)
		}
		return out
	}
	tests := []struct {
		name string
		s    Series
		n    int
		want []time.Time
	}{
		{"daily crosses a weekend and a year", Series{Dates: days("2011-12-30"), Freq: Daily}, 3, days("2011-12-31", "2012-01-01", "2012-01-02")},
		{"business day: Friday to Monday", Series{Dates: days("2020-04-16", "2020-04-17"), Freq: BusinessDay}, 3, days("2020-04-20", "2020-04-21", "2020-04-22")},
		{"business day: a whole week", Series{Dates: days("2020-04-15"), Freq: BusinessDay}, 5, days("2020-04-16", "2020-04-17", "2020-04-20", "2020-04-21", "2020-04-22")},
		{"leap day", Series{Dates: days("2012-02-28"), Freq: Daily}, 2, days("2012-02-29", "2012-03-01")},
		{"n = 0", Series{Dates: days("2011-01-01")}, 0, nil},
		{"n < 0", Series{Dates: days("2011-01-01")}, -1, nil},
		{"empty series", Series{}, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Future(tt.n); !slices.EqualFunc(got, tt.want, time.Time.Equal) {
				t.Errorf("Future(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestFrequencyString(t *testing.T) {
	for f, want := range map[Frequency]string{Daily: "daily", BusinessDay: "business-day", 7: "Frequency(7)"} {
		if got := f.String(); got != want {
			t.Errorf("Frequency(%d).String() = %q, want %q", int(f), got, want)
		}
	}
}
