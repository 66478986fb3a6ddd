package dataset

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The real series the tests read, all inside the repository: the embedded
// datasets' files (byte copies of the shared sample data) and testdata/.
const (
	bikeFile    = "../../datasets/bike.csv"
	sp500File   = "../../datasets/sp500.csv"
	seattleFile = "testdata/seattle_temp_max_daily.csv"
)

func date(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestReadErrors(t *testing.T) {
	const ok = "date,value\n2011-01-01,1\n" // line 2 is a good row; bad rows start on line 3
	tests := []struct {
		name   string
		in     string
		opt    Options
		kind   error
		line   int
		column string // "" = the error is about no single column
		want   string // a fragment of the message
	}{
		{"empty file", "", Options{}, ErrEmpty, 0, "", "empty"},
		{"blank lines only", "\n\n\n", Options{}, ErrEmpty, 0, "", "empty"},
		{"header only", "date,value\n", Options{}, ErrEmpty, 0, "", "no data rows"},
		{"header and blank lines", "date,value\n\n  \n", Options{}, ErrEmpty, 0, "", "no data rows"},
		{"no date column", "day,value\n2011-01-01,1\n", Options{}, ErrMissingColumn, 1, "", `missing column "date" (header: day,value)`},
		{"header after blank lines", "\n\nday,value\n2011-01-01,1\n", Options{}, ErrMissingColumn, 3, "", `missing column "date"`},
		{"no target column", "date,a,b\n2011-01-01,1,2\n", Options{}, ErrMissingColumn, 1, "", `looked for "close" (with open, high, low), "value", or a single column`},
		{"partial OHLC is not OHLCV", "date,open,close\n2011-01-01,1,2\n", Options{}, ErrMissingColumn, 1, "", "header: date,open,close"},
		{"unknown target", ok, Options{Target: "Price"}, ErrUnknownColumn, 1, "price", "not in the header (header: date,value)"},
		{"date as target", ok, Options{Target: "date"}, ErrUnknownColumn, 1, "date", "holds the dates"},
		{"duplicate header", "date,value,Value\n2011-01-01,1,2\n", Options{}, ErrBadHeader, 1, "value", "columns 2 and 3"},
		{"unnamed column", "date,value,\n2011-01-01,1,\n", Options{}, ErrBadHeader, 1, "", "column 3 has no name"},
		{"row too long", ok + "2011-01-02,1,3\n", Options{}, ErrRowLength, 3, "", "has 3 fields, the header has 2"},
		{"row too short", ok + "2011-01-02,1\n2011-01-03\n", Options{}, ErrRowLength, 4, "", "has 1 fields"},
		{"bare quote", ok + "2011-01-02,1\"2\n", Options{}, ErrSyntax, 3, "", "malformed CSV"},
		{"lines of a row whose date comes after a multi-line field", "value,date\n\"1\n\",2011-01-01\n2,2011-01-01\n", Options{}, ErrDuplicateDate, 4, "date", "repeats line 3"},
		{"bad date", ok + "2011-13-01,1\n", Options{}, ErrBadDate, 3, "date", `cannot parse "2011-13-01" as a date`},
		{"US date", ok + "01/02/2011,1\n", Options{}, ErrBadDate, 3, "date", "want YYYY-MM-DD"},
		{"empty date", ok + ",1\n", Options{}, ErrBadDate, 3, "date", "empty"},
		{"intraday time", ok + "2011-01-02 12:00:00,1\n", Options{}, ErrBadDate, 3, "date", "intraday data is not supported"},
		{"intraday RFC 3339", ok + "2011-01-02T00:00:01Z,1\n", Options{}, ErrBadDate, 3, "date", "not at midnight"},
		{"decimal comma", ok + "2011-01-02,\"12,5\"\n", Options{}, ErrBadNumber, 3, "value", `cannot parse "12,5" as a number`},
		{"empty number", ok + "2011-01-02,\n", Options{}, ErrBadNumber, 3, "value", "empty"},
		{"hex number", ok + "2011-01-02,0x1p4\n", Options{}, ErrBadNumber, 3, "value", `"0x1p4"`},
		{"NaN", ok + "2011-01-02,NaN\n", Options{}, ErrNonFinite, 3, "value", `"NaN" is not a finite number`},
		{"inf", ok + "2011-01-02,-inf\n", Options{}, ErrNonFinite, 3, "value", "not a finite number"},
		{"overflow", ok + "2011-01-02,1e400\n", Options{}, ErrNonFinite, 3, "value", "not a finite number"},
		{"line counted after a multi-line field", ok + "2011-01-02,\"1\n\"\n2011-01-03,x\n", Options{}, ErrBadNumber, 5, "value", `"x"`},
		{"bad OHLCV volume", "date,open,high,low,close,volume\n2011-01-03,1,2,0.5,1.5,100\n2011-01-04,1,2,0.5,1.5,n/a\n",
			Options{}, ErrBadNumber, 3, "volume", `"n/a"`},
		{"bad OHLC column besides the target", "date,open,high,low,close\n2011-01-03,1,2,0.5,1.5\n2011-01-04,1,x,0.5,1.5\n",
			Options{}, ErrBadNumber, 3, "high", `"x"`},
		{"duplicate date", ok + "2011-01-02,1\n2011-01-02,2\n", Options{}, ErrDuplicateDate, 4, "date", "date 2011-01-02 repeats line 3"},
		{"duplicate date as timestamp", ok + "2011-01-01T00:00:00Z,2\n", Options{}, ErrDuplicateDate, 3, "date", "repeats line 2"},
		{"unsorted", ok + "2011-01-03,1\n2011-01-02,2\n", Options{}, ErrUnsorted, 4, "date", "2011-01-02 comes before 2011-01-03 on line 3"},
		{"daily gap", "date,value\n2011-03-03,1\n2011-03-04,1\n2011-03-07,1\n2011-03-12,1\n", Options{}, ErrGap, 4, "",
			"no row for 2011-03-05..2011-03-06; daily series must be complete (line 5 falls on a Saturday"},
		{"one missing day", "date,value\n2011-01-01,1\n2011-01-03,1\n", Options{}, ErrGap, 3, "", "no row for 2011-01-02;"},
		{"too few rows", ok + "2011-01-02,1\n", Options{MinRows: 3}, ErrTooFewRows, 0, "", "has 2 rows, at least 3 are needed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Read(strings.NewReader(tt.in), "t.csv", tt.opt)
			if err == nil {
				t.Fatalf("Read = %d rows, want an error", s.Len())
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %q", err, tt.kind)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %q (%T) is not an *Error", err, err)
			}
			if e.File != "t.csv" || e.Line != tt.line || e.Column != tt.column {
				t.Errorf("error at %q line %d column %q, want %q line %d column %q", e.File, e.Line, e.Column, "t.csv", tt.line, tt.column)
			}
			prefix := "t.csv: "
			if tt.line > 0 {
				prefix = "t.csv:" + strconv.Itoa(tt.line) + ": "
			}
			if tt.column != "" {
				prefix += `column "` + tt.column + `": `
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.want) {
				t.Errorf("message %q, want it to start with %q and contain %q", msg, prefix, tt.want)
			}
		})
	}
}

func TestReadAccepts(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		opt    Options
		target string
		values []float64
		first  string // the first date
		freq   Frequency
		counts bool
	}{
		{"plain", "date,value\n2011-01-01,3\n2011-01-02,4\n", Options{}, "value", []float64{3, 4}, "2011-01-01", Daily, true},
		{"BOM, CRLF, spaces, upper case, trailing blank lines",
			"\uFEFF Date , VALUE \r\n 2011-01-01 , 3.5 \r\n2011-01-02,4\r\n\r\n   \n\n", Options{}, "value", []float64{3.5, 4}, "2011-01-01", Daily, false},
		{"quoted fields", "\"date\",\"value\"\n\"2011-01-01\",\"-1\"\n", Options{}, "value", []float64{-1}, "2011-01-01", Daily, false},
		{"midnight timestamps", "date,value\n2011-01-01 00:00:00,1\n2011-01-02T00:00:00Z,2\n2011-01-03T00:00:00+05:00,3\n",
			Options{}, "value", []float64{1, 2, 3}, "2011-01-01", Daily, true},
		{"date not first, single other column", "temp,date\n-1.5,2011-01-01\n", Options{}, "temp", []float64{-1.5}, "2011-01-01", Daily, false},
		{"other columns are not parsed", "date,value,note\n2011-01-01,1,n/a\n", Options{}, "value", []float64{1}, "2011-01-01", Daily, true},
		{"target override, case-insensitive", "date,a,b\n2011-01-01,1,x\n", Options{Target: " A "}, "a", []float64{1}, "2011-01-01", Daily, true},
		// 2011-01-07 is a Friday, 2011-01-10 a Monday, 2011-01-18 a Tuesday after a holiday.
		{"weekdays with gaps", "date,value\n2011-01-07,1\n2011-01-10,2\n2011-01-11,3\n2011-01-18,4\n", Options{}, "value", []float64{1, 2, 3, 4}, "2011-01-07", BusinessDay, true},
		{"weekdays without a gap are daily", "date,value\n2011-01-10,1\n2011-01-11,2\n", Options{}, "value", []float64{1, 2}, "2011-01-10", Daily, true},
		{"enough rows", "date,value\n2011-01-01,0\n2011-01-02,0\n", Options{MinRows: 2}, "value", []float64{0, 0}, "2011-01-01", Daily, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Read(strings.NewReader(tt.in), "t.csv", tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != "t.csv" || s.Target != tt.target || s.Freq != tt.freq || s.Counts != tt.counts || s.OHLCV {
				t.Errorf("got name %q target %q freq %v counts %v OHLCV %v, want %q %q %v %v false",
					s.Name, s.Target, s.Freq, s.Counts, s.OHLCV, "t.csv", tt.target, tt.freq, tt.counts)
			}
			if !slices.Equal(s.Values, tt.values) || len(s.Dates) != len(s.Values) {
				t.Errorf("values %v (%d dates), want %v", s.Values, len(s.Dates), tt.values)
			}
			if !s.Dates[0].Equal(date(tt.first)) || s.Dates[0].Location() != time.UTC {
				t.Errorf("first date %v, want %s UTC", s.Dates[0], tt.first)
			}
			for i := 1; i < len(s.Dates); i++ {
				if h, m, sec := s.Dates[i].Clock(); h != 0 || m != 0 || sec != 0 || s.Dates[i].Location() != time.UTC {
					t.Errorf("date %d is %v, want UTC midnight", i, s.Dates[i])
				}
			}
		})
	}
}

func TestLoadSampleData(t *testing.T) {
	tests := []struct {
		file        string
		rows        int
		first, last string
		freq        Frequency
		ohlcv       bool
		counts      bool
		firstValue  float64
	}{
		{bikeFile, 731, "2011-01-01", "2012-12-31", Daily, false, true, 985},
		{sp500File, 5105, "2000-01-03", "2020-04-17", BusinessDay, true, false, 1455.219971},
		{seattleFile, 1461, "2012-01-01", "2015-12-31", Daily, false, false, 12.8},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			s, err := Load(tt.file, Options{MinRows: 300})
			if err != nil {
				t.Fatal(err)
			}
			target := "value"
			if tt.ohlcv {
				target = "close"
			}
			if s.Name != filepath.Base(tt.file) || s.Len() != tt.rows || s.Freq != tt.freq || s.OHLCV != tt.ohlcv || s.Counts != tt.counts || s.Target != target {
				t.Errorf("got %q: %d rows, %v, OHLCV %v, counts %v, target %q; want %q: %d, %v, %v, %v, %q",
					s.Name, s.Len(), s.Freq, s.OHLCV, s.Counts, s.Target, filepath.Base(tt.file), tt.rows, tt.freq, tt.ohlcv, tt.counts, target)
			}
			if !s.Dates[0].Equal(date(tt.first)) || !s.Dates[s.Len()-1].Equal(date(tt.last)) {
				t.Errorf("dates %v..%v, want %s..%s", s.Dates[0], s.Dates[s.Len()-1], tt.first, tt.last)
			}
			if s.Values[0] != tt.firstValue {
				t.Errorf("first value %v, want %v", s.Values[0], tt.firstValue)
			}
		})
	}
}

func TestLoadTargetOverride(t *testing.T) {
	s, err := Load(sp500File, Options{Target: "open"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Target != "open" || !s.OHLCV || s.Len() != 5105 || s.Values[0] != 1469.25 || s.Values[s.Len()-1] != 2842.429932 {
		t.Errorf("target %q OHLCV %v rows %d values %v..%v, want open true 5105 1469.25..2842.429932",
			s.Target, s.OHLCV, s.Len(), s.Values[0], s.Values[s.Len()-1])
	}
}

func TestLoadErrorNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(path, []byte("date,value\n2011-01-01,NaN\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, Options{})
	if want := path + `:2: column "value": "NaN" is not a finite number`; err == nil || err.Error() != want {
		t.Errorf("Load = %v, want %s", err, want)
	}
	if !errors.Is(err, ErrNonFinite) {
		t.Errorf("%v is not ErrNonFinite", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.csv"), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want fs.ErrNotExist", err)
	}
}

func TestCountsRejectsFractionsAndNegatives(t *testing.T) {
	for _, v := range []string{"1.5", "-1", "1e-300"} {
		s, err := Read(strings.NewReader("date,value\n2011-01-01,2\n2011-01-02,"+v+"\n"), "t.csv", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Counts {
			t.Errorf("value %s: Counts = true, want false", v)
		}
	}
}
