package dataset

import (
	"bufio"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// sentinels are the kinds every error from Read must match.
var sentinels = []error{
	ErrEmpty, ErrSyntax, ErrRowLength, ErrBadHeader, ErrMissingColumn, ErrUnknownColumn, ErrBadDate,
	ErrBadNumber, ErrNonFinite, ErrDuplicateDate, ErrUnsorted, ErrGap, ErrTooFewRows,
}

// FuzzRead checks that Read never panics, that every error is a located
// *Error of a known kind, and that every Series it returns keeps its promises.
func FuzzRead(f *testing.F) {
	for _, file := range []string{bikeFile, sp500File, seattleFile} {
		fh, err := os.Open(file)
		if err != nil {
			f.Fatal(err)
		}
		var head strings.Builder
		sc := bufio.NewScanner(fh)
		for i := 0; i < 8 && sc.Scan(); i++ {
			head.WriteString(sc.Text() + "\n")
		}
		fh.Close()
		f.Add([]byte(head.String()), "", 0)
		f.Add([]byte(head.String()), "open", 5)
	}
	for _, in := range []string{
		"", "\uFEFF", "date\n", "date,value\n", "date,value,value\n", "date,value,\n2011-01-01,1,\n",
		"date,value\n2011-01-01,1,2\n", "date,value\n2011-01-01,1\"\n", "date,value\n2011-01-01,\"1\n",
		"date,value\n2011-02-30,1\n", "date,value\n2011-01-01 12:00:00,1\n", "date,value\n2011-01-01T00:00:00-12:00,1\n",
		"date,value\n2011-01-01,NaN\n", "date,value\n2011-01-01,1e400\n", "date,value\n2011-01-01,0x1p4\n",
		"date,value\n2011-01-02,1\n2011-01-01,1\n", "date,value\n2011-01-01,1\n2011-01-01,1\n",
		"date,value\n0001-01-01,1\n9999-12-31,1\n", "date,value\n2011-01-07,1\n2011-01-10,1\n",
		"value,date\n1,2011-01-01\n", " DATE , Value \r\n 2011-01-01 , 2 \r\n  \n",
	} {
		f.Add([]byte(in), "", 2)
	}
	f.Fuzz(func(t *testing.T, data []byte, target string, minRows int) {
		s, err := Read(strings.NewReader(string(data)), "f.csv", Options{Target: target, MinRows: minRows})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != "f.csv" || e.Line < 0 {
				t.Fatalf("error %q (%T) is not a located *Error", err, err)
			}
			for _, kind := range sentinels {
				if errors.Is(err, kind) {
					return
				}
			}
			t.Fatalf("error %q matches no sentinel", err)
		}
		if s.Len() == 0 || len(s.Values) != s.Len() || s.Len() < minRows {
			t.Fatalf("%d dates, %d values, MinRows %d", s.Len(), len(s.Values), minRows)
		}
		for i, d := range s.Dates {
			if d.Location() != time.UTC || d.Hour() != 0 || d.Minute() != 0 || d.Second() != 0 || d.Nanosecond() != 0 {
				t.Fatalf("date %d is %v, want UTC midnight", i, d)
			}
			if i > 0 && !d.After(s.Dates[i-1]) {
				t.Fatalf("dates %v, %v are not increasing", s.Dates[i-1], d)
			}
			if s.Freq == BusinessDay && isWeekend(d) {
				t.Fatalf("business-day series has %v", d)
			}
			if s.Freq == Daily && i > 0 && daysBetween(s.Dates[i-1], d) != 1 {
				t.Fatalf("daily series jumps from %v to %v", s.Dates[i-1], d)
			}
		}
		for _, v := range s.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) || s.Counts && (v < 0 || v != math.Trunc(v)) {
				t.Fatalf("value %v (Counts %v)", v, s.Counts)
			}
		}
		last := s.Dates[s.Len()-1]
		for _, d := range s.Future(3) {
			if !d.After(last) || s.Freq == BusinessDay && isWeekend(d) {
				t.Fatalf("Future after %v gives %v", last, d)
			}
			last = d
		}
	})
}
