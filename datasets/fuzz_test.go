package datasets

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzPut checks the upload decoder: it never panics; a refused upload is
// an error of the vocabulary and leaves the folder empty; an accepted one
// is stored byte for byte, listed with its hash and read back row for row.
func FuzzPut(f *testing.F) {
	for _, seed := range []string{valueCSV(MinRows), ohlcvCSV(MinRows), "", "date,value\n", "\uFEFFdate,value\r\n2020-01-01,1\r\n",
		strings.Replace(valueCSV(MinRows), "2020-01-05,104", "2020-01-05,NaN", 1), "date,value,note\n2020-01-01,1,\"a\nb\"\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		s, err := Open(dir, Options{MaxBytes: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		info, created, err := s.Put("fuzz", bytes.NewReader(body), false)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error outside the vocabulary: %v", err)
			}
			var ie *InvalidError
			if errors.As(err, &ie) && (ie.Problem.Problem == "" || ie.Problem.File != "fuzz.csv") {
				t.Fatalf("problem %+v", ie.Problem)
			}
			if files := snapshot(t, dir); len(files) != 0 {
				t.Fatalf("a refused upload left %v", keys(files))
			}
			return
		}
		got, _ := os.ReadFile(filepath.Join(dir, "fuzz.csv"))
		if !created || !bytes.Equal(got, body) || info.Hash != hashOf(body) || info.Rows < MinRows {
			t.Fatalf("stored %d bytes of %d, info %+v", len(got), len(body), info)
		}
		r, err := s.Rows("fuzz", time.Time{})
		if err != nil || len(r.Data) != info.Rows {
			t.Fatalf("rows: %v (%d of %d)", err, len(r.Data), info.Rows)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("rows do not marshal: %v", err)
		}
	})
}

// FuzzAppend checks the append decoders, CSV and JSON: they never panic; a
// refused append leaves the file as it was; an accepted one leaves a file
// that loads, grown by exactly the rows committed reports, which GET's
// ?since= gives back.
func FuzzAppend(f *testing.F) {
	for _, seed := range []struct {
		body string
		json bool
	}{
		{"2020-02-10,7\n", false}, {"value,date\n8,2020-02-10\n9,2020-02-11\n", false}, {"2020-02-10,NaN\n", false},
		{"date,value,x\n2020-02-10,1,2\n", false}, {"2020-02-09,1\n", false}, {"\"2020-02-10\",\"1\"\r\n", false},
		{`[{"date":"2020-02-10","value":1}]`, true}, {`{"rows":[{"value":"2","date":"2020-02-10"}]}`, true},
		{`[{"date":"2020-02-10","value":1,"value":2}]`, true}, {`[{"date":"2020-02-10"}]`, true}, {`[1]`, true},
	} {
		f.Add([]byte(seed.body), seed.json)
	}
	old := valueCSV(40)
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		dir := t.TempDir()
		s, err := Open(dir, Options{MaxBytes: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		write(t, dir, "fuzz.csv", old)
		format := FormatCSV
		if asJSON {
			format = FormatJSON
		}
		var told *Appended
		got, err := s.Append("fuzz", bytes.NewReader(body), format, func(a Appended) { told = &a })
		file, _ := os.ReadFile(filepath.Join(dir, "fuzz.csv"))
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error outside the vocabulary: %v", err)
			}
			if string(file) != old || told != nil {
				t.Fatalf("a refused append changed the file (%d bytes) or was committed", len(file))
			}
			return
		}
		if told == nil || len(got.Rows) == 0 || got.Info.Rows != 40+len(got.Rows) || got.Info.Hash != hashOf(file) || !strings.HasPrefix(string(file), old) {
			t.Fatalf("appended %+v", got)
		}
		since, _ := time.Parse(time.DateOnly, "2020-02-09")
		r, err := s.Rows("fuzz", since)
		if err != nil {
			t.Fatalf("the grown file: %v", err)
		}
		a, _ := json.Marshal(r.Data)
		b, _ := json.Marshal(got.Rows)
		if !bytes.Equal(a, b) {
			t.Fatalf("GET since the old last day gives %s, the append reported %s", a, b)
		}
	})
}
