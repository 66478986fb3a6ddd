package datasets

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kairoscope/kairoscope/engine/dataset"
)

// Rows are appended as CSV (with or without a header, in any column order)
// or JSON (an array or {"rows": ...}); the file grows by exactly those
// lines, each field trimmed, committed tells the rows as /ws sends them, and the next version
// is what Get lists.
func TestAppend(t *testing.T) {
	s, dir := openStore(t, Options{})
	s.Put("visits", strings.NewReader(valueCSV(40)), false) // last day 2020-02-09
	s.Put("spx", strings.NewReader(ohlcvCSV(35)), false)    // last day Friday 2020-02-21
	path := filepath.Join(dir, "visits.csv")
	want := valueCSV(40)
	for i, c := range []struct {
		format     Format
		body, adds string // adds: the lines the file gains
	}{
		{FormatCSV, "2020-02-10,7\n", "2020-02-10,7\n"},
		{FormatCSV, "value,date\n8,2020-02-11\n9 , 2020-02-12\n", "2020-02-11,8\n2020-02-12,9\n"},
		{FormatCSV, "\uFEFFDate,Value\r\n2020-02-13,10\r\n\r\n", "2020-02-13,10\n"},
		{FormatJSON, `[{"date":"2020-02-14","value":11}]`, "2020-02-14,11\n"},
		{FormatJSON, `{"rows":[{"value":12.5,"date":"2020-02-15"},{"date":"2020-02-16","value":"13"}]}`, "2020-02-15,12.5\n2020-02-16,13\n"},
		{FormatJSON, `[{"date":"2020-02-17T00:00:00Z","value":1e2}]`, "2020-02-17T00:00:00Z,1e2\n"},
	} {
		before, _ := s.Get("visits")
		var told []Appended
		got, err := s.Append("visits", strings.NewReader(c.body), c.format, func(a Appended) { told = append(told, a) })
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		want += c.adds
		b, _ := os.ReadFile(path)
		if string(b) != want {
			t.Fatalf("%d: the file ends %q, want %q", i, tail(string(b)), tail(want))
		}
		after, _ := s.Get("visits")
		if len(told) != 1 || got.PreviousHash != before.Hash || got.Info.Hash != hashOf(b) || after.Hash != got.Info.Hash ||
			got.Info.Rows != before.Rows+len(got.Rows) || after.Last != got.Rows[len(got.Rows)-1].Date {
			t.Errorf("%d: appended %+v (told %d), before %+v, after %+v", i, got, len(told), before, after)
		}
	}
	if b, _ := json.Marshal(mustRows(t, s, "visits", "2020-02-14")); string(b) != `[{"date":"2020-02-15","value":12.5},{"date":"2020-02-16","value":13},{"date":"2020-02-17","value":100}]` {
		t.Errorf("rows since 2020-02-14: %s", b)
	}

	// OHLCV, and the rows as chart_update carries them.
	got, err := s.Append("spx", strings.NewReader("2020-02-24,3001,3010,2990,3005,123\n2020-02-25,3005,3006,2980,2981,124\n"), FormatCSV, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(got.Rows); string(b) != `[{"date":"2020-02-24","open":3001,"high":3010,"low":2990,"close":3005,"volume":123},{"date":"2020-02-25","open":3005,"high":3006,"low":2980,"close":2981,"volume":124}]` {
		t.Errorf("rows %s", b)
	}
	if got.Info.Rows != 37 || got.Info.Last != "2020-02-25" || !got.Info.OHLCV {
		t.Errorf("%+v", got.Info)
	}
}

func tail(s string) string { return s[max(0, len(s)-60):] }

func mustRows(t *testing.T, s *Store, name, since string) any {
	t.Helper()
	d, _ := time.Parse(time.DateOnly, since)
	r, err := s.Rows(name, d)
	if err != nil {
		t.Fatal(err)
	}
	return r.Data
}

// A file with CRLF line ends, or no newline at its end, grows by whole
// lines in its own line ending: never a row glued to the last one.
func TestAppendKeepsLineEnds(t *testing.T) {
	s, dir := openStore(t, Options{})
	crlf := strings.ReplaceAll(valueCSV(40), "\n", "\r\n")
	write(t, dir, "crlf.csv", crlf)
	write(t, dir, "bare.csv", strings.TrimSuffix(valueCSV(40), "\n"))
	for file, want := range map[string]string{"crlf": crlf + "2020-02-10,1\r\n", "bare": valueCSV(40) + "2020-02-10,1\n"} {
		if _, err := s.Append(file, strings.NewReader("2020-02-10,1"), FormatCSV, nil); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, file+".csv")); string(b) != want {
			t.Errorf("%s ends %q, want %q", file, tail(string(b)), tail(want))
		}
	}
}

// Each bad append is refused with the body's line (or JSON row) and the
// problem, and the folder is unchanged; committed is never called.
func TestAppendRefusesBadRows(t *testing.T) {
	s, dir := openStore(t, Options{MaxBytes: 2048})
	s.Put("visits", strings.NewReader(valueCSV(40)), false) // daily, last day 2020-02-09
	s.Put("spx", strings.NewReader(ohlcvCSV(30)), false)    // business days, last day Friday 2020-02-14
	write(t, dir, "broken.csv", "date,value\n2020-01-01,x\n")
	cases := []struct {
		name, body string
		format     Format
		kind       error
		line       int
		want       string
	}{
		{"visits", "2020-02-09,1\n", FormatCSV, dataset.ErrDuplicateDate, 1, "2020-02-09 is already the dataset's last date"},
		{"visits", "2020-02-01,1\n", FormatCSV, dataset.ErrUnsorted, 1, "before the dataset's last date 2020-02-09"},
		{"visits", "2020-02-10,1\n2020-02-12,1\n2020-02-11,1\n", FormatCSV, dataset.ErrUnsorted, 3, "comes before 2020-02-12 on line 2"},
		{"visits", "2020-02-10,1\n2020-02-10,2\n", FormatCSV, dataset.ErrDuplicateDate, 2, "repeats line 1"},
		{"visits", "2020-02-10,1\n2020-02-12,1\n", FormatCSV, dataset.ErrGap, 2, "no row for 2020-02-11"},
		{"visits", "2020-02-10,NaN\n", FormatCSV, dataset.ErrNonFinite, 1, `rows:1: column "value": "NaN" is not a finite number`},
		{"visits", "2020-02-10,Inf\n", FormatCSV, dataset.ErrNonFinite, 1, "not a finite number"},
		{"visits", "2020-02-10,-1e400\n", FormatCSV, dataset.ErrNonFinite, 1, "not a finite number"},
		{"visits", "2020-02-10,abc\n", FormatCSV, dataset.ErrBadNumber, 1, `cannot parse "abc" as a number`},
		{"visits", "10/02/2020,1\n", FormatCSV, dataset.ErrBadDate, 1, "as a date"},
		{"visits", "2020-02-10,1,2\n", FormatCSV, dataset.ErrRowLength, 1, "has 3 fields, the dataset has 2 (date,value)"},
		{"visits", "date,open,close\n2020-02-10,1,2\n", FormatCSV, dataset.ErrMissingColumn, 1, `no column "value"`},
		{"visits", "date,value,extra\n2020-02-10,1,2\n", FormatCSV, dataset.ErrUnknownColumn, 1, `column "extra": not a column of the dataset`},
		{"visits", "date,value,value\n2020-02-10,1,2\n", FormatCSV, dataset.ErrBadHeader, 1, "appears twice"},
		{"visits", "date,value\n", FormatCSV, dataset.ErrEmpty, 0, "no rows to append"},
		{"visits", "", FormatCSV, dataset.ErrEmpty, 0, "no rows to append"},
		{"visits", "2020-02-10,\"1\n", FormatCSV, dataset.ErrSyntax, 1, "malformed CSV"},
		{"visits", `[{"date":"2020-02-10","value":1,"extra":2}]`, FormatJSON, dataset.ErrUnknownColumn, 1, `row 1: column "extra"`},
		{"visits", `[{"date":"2020-02-10","value":1},{"date":"2020-02-11"}]`, FormatJSON, dataset.ErrMissingColumn, 2, `row 2: column "value": missing`},
		{"visits", `[{"date":"2020-02-10","value":"NaN"}]`, FormatJSON, dataset.ErrNonFinite, 1, "row 1: column \"value\""},
		{"visits", `[{"date":"2020-02-10","value":null}]`, FormatJSON, dataset.ErrSyntax, 1, "want a number or a string"},
		{"visits", `[{"date":"2020-02-10","value":1,"value":2}]`, FormatJSON, dataset.ErrSyntax, 1, "twice"},
		{"visits", `[{"date":"2020-02-08","value":1}]`, FormatJSON, dataset.ErrUnsorted, 1, "row 1: column \"date\""},
		{"visits", `[{"date":"2020-02-10","value":1},{"date":"2020-02-10","value":1}]`, FormatJSON, dataset.ErrDuplicateDate, 2, "repeats row 1"},
		{"visits", `{"rows":[],"more":1}`, FormatJSON, dataset.ErrSyntax, 0, "unknown field"},
		{"visits", `[]`, FormatJSON, dataset.ErrSyntax, 0, "no rows to append"},
		{"visits", `[] []`, FormatJSON, dataset.ErrSyntax, 0, "data after the rows"},
		{"visits", `"2020-02-10,1"`, FormatJSON, dataset.ErrSyntax, 0, "want JSON rows"},
		{"visits", strings.Repeat("2020-02-10,1\n", 200), FormatCSV, ErrTooLarge, 0, "2048"},
		{"spx", "2020-02-15,1,2,0,1,5\n", FormatCSV, dataset.ErrGap, 1, "falls on a Saturday"},
		{"spx", "2020-02-17,1,2,0,1\n", FormatCSV, dataset.ErrRowLength, 1, "the dataset has 6"},
		{"spx", "2020-02-17,1,2,x,1,5\n", FormatCSV, dataset.ErrBadNumber, 1, `column "low"`},
		{"broken", "2020-01-02,1\n", FormatCSV, ErrBroken, 0, "replace the file"},
		{"bike", "2013-01-01,1\n", FormatCSV, ErrReadOnly, 0, "embedded"},
		{"nope", "2013-01-01,1\n", FormatCSV, ErrNotFound, 0, "unknown dataset"},
		{"../visits", "2013-01-01,1\n", FormatCSV, ErrBadName, 0, "never a path"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%.30s", c.name, c.body), func(t *testing.T) {
			before := snapshot(t, dir)
			_, err := s.Append(c.name, strings.NewReader(c.body), c.format, func(Appended) { t.Error("committed was called") })
			checkRefusal(t, err, c.kind, c.line, c.want)
			if after := snapshot(t, dir); !maps.Equal(before, after) {
				t.Errorf("the folder changed: before %v after %v", keys(before), keys(after))
			}
		})
	}
	var ie *InvalidError
	_, err := s.Append("visits", strings.NewReader(`[{"date":"2020-02-10","value":"x"}]`), FormatJSON, nil)
	if !errors.As(err, &ie) || ie.Problem.Row != 1 || ie.Problem.File != "row 1" || ie.Problem.Column != "value" || ie.Problem.Line != 0 {
		t.Errorf("JSON problem %+v", ie)
	}
}

// GET's two forms: the rows after a date as CSV (with the header) and
// JSON; a file that does not load is still readable as it is.
func TestRowsAndCSVSince(t *testing.T) {
	s, dir := openStore(t, Options{})
	s.Put("spx", strings.NewReader(ohlcvCSV(35)), false)
	since, _ := time.Parse(time.DateOnly, "2020-02-19")
	info, b, err := s.CSVSince("spx", since)
	if err != nil || string(b) != "date,open,high,low,close,volume\n2020-02-20,3009,3012.5,3006.75,3010,1000033\n2020-02-21,3010,3013.5,3007.75,3011,1000034\n" || info.Rows != 35 {
		t.Errorf("%+v %q %v", info, b, err)
	}
	r, err := s.Rows("spx", since)
	if err != nil || len(r.Data) != 2 || r.Since != "2020-02-19" || r.Hash != info.Hash {
		t.Fatalf("%+v %v", r, err)
	}
	all, _ := s.Rows("spx", time.Time{})
	if len(all.Data) != 35 || all.Data[0].Date != "2020-01-06" || all.Since != "" {
		t.Errorf("all rows: %d, first %v", len(all.Data), all.Data[0])
	}
	bike, err := s.Rows("bike", time.Time{})
	if err != nil || len(bike.Data) != 731 || bike.Source != SourceEmbedded {
		t.Errorf("bike: %v", err)
	}
	write(t, dir, "broken.csv", "date,value\n2020-01-01,x\n")
	if _, b, err := s.Read("broken"); err != nil || string(b) != "date,value\n2020-01-01,x\n" {
		t.Errorf("read broken: %q %v", b, err)
	}
	if _, err := s.Rows("broken", time.Time{}); !errors.Is(err, ErrBroken) {
		t.Errorf("rows of broken: %v", err)
	}
}
