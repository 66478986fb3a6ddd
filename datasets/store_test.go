package datasets

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kairoscope/kairoscope/engine/dataset"
)

// valueCSV is a daily date,value series of n rows from 2020-01-01.
func valueCSV(n int) string {
	var b strings.Builder
	b.WriteString("date,value\n")
	d := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		fmt.Fprintf(&b, "%s,%d\n", d.AddDate(0, 0, i).Format(time.DateOnly), 100+i%17)
	}
	return b.String()
}

// ohlcvCSV is a business-day OHLCV series of n rows from Monday
// 2020-01-06.
func ohlcvCSV(n int) string {
	var b strings.Builder
	b.WriteString("date,open,high,low,close,volume\n")
	d := time.Date(2020, 1, 6, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; d = d.AddDate(0, 0, 1) {
		if d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
			continue
		}
		c := 3000 + float64(i%23)
		fmt.Fprintf(&b, "%s,%g,%g,%g,%g,%d\n", d.Format(time.DateOnly), c-1, c+2.5, c-3.25, c, 1000000+i)
		i++
	}
	return b.String()
}

func openStore(t *testing.T, opt Options) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "datasets")
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func write(t *testing.T, dir, file, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// snapshot is every file under dir, by path, with its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[strings.TrimPrefix(p, dir)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func byName(t *testing.T, s *Store) map[string]Info {
	t.Helper()
	infos, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Info{}
	for _, i := range infos {
		if _, dup := out[i.Name]; dup && i.Source == SourceFolder {
			out[i.Name+"#"+i.File] = i
			continue
		}
		out[i.Name] = i
	}
	return out
}

// Every CSV of the folder is listed: those that load with their numbers,
// the others with the file, line and problem; files that are not datasets
// are left out. Open removes a crash's temporary files.
func TestListFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	os.MkdirAll(filepath.Join(dir, versionsDir), 0o755)
	write(t, dir, "visits.csv", valueCSV(40))
	write(t, dir, "spx.csv", ohlcvCSV(35))
	write(t, dir, "broken.csv", "date,value\n2020-01-01,1\n2020-01-02,x\n")
	write(t, dir, "My Data.csv", valueCSV(40))
	write(t, dir, "bike.csv", valueCSV(40))
	write(t, dir, "notes.txt", "not a dataset")
	write(t, dir, ".hidden.csv", valueCSV(40))
	write(t, dir, ".tmp-123.part", "half an upl")
	os.Mkdir(filepath.Join(dir, "folder.csv"), 0o755)
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123.part")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open left the temporary file: %v", err)
	}
	got := byName(t, s)
	if len(got) != 8 { // bike, sp500 and transit embedded; visits, spx, broken, My Data and bike.csv in the folder
		t.Fatalf("listed %v", slicesOf(got))
	}
	v := got["visits"]
	if v.Source != SourceFolder || v.ReadOnly || v.Rows != 40 || v.First != "2020-01-01" || v.Last != "2020-02-09" || v.Frequency != "daily" ||
		v.Target != "value" || v.OHLCV || v.File != "visits.csv" || v.Hash != hashOf([]byte(valueCSV(40))) || v.Modified == nil || v.Error != "" {
		t.Errorf("visits: %+v", v)
	}
	if x := got["spx"]; !x.OHLCV || x.Target != "close" || x.Frequency != "business-day" || x.Rows != 35 || len(x.Columns) != 6 {
		t.Errorf("spx: %+v", x)
	}
	b := got["broken"]
	if b.Problem == nil || b.Problem.File != "broken.csv" || b.Problem.Line != 3 || b.Problem.Column != "value" ||
		b.Error != `broken.csv:3: column "value": cannot parse "x" as a number` || b.Rows != 0 || b.Hash == "" {
		t.Errorf("broken: %+v %+v", b, b.Problem)
	}
	if m := got["My Data"]; !strings.Contains(m.Error, "rename it") {
		t.Errorf("My Data.csv: %+v", m)
	}
	if e := got["bike#bike.csv"]; e.Source != SourceFolder || !strings.Contains(e.Error, "embedded dataset") {
		t.Errorf("bike.csv in the folder: %+v", e)
	}
	if got["bike"].Source != SourceEmbedded || got["bike"].Rows != 731 {
		t.Errorf("the embedded bike: %+v", got["bike"])
	}
	for _, name := range []string{"My Data", "broken"} {
		if _, _, err := s.Pin(name); err == nil {
			t.Errorf("pinned %q, which does not load", name)
		}
	}
	if _, _, err := s.Pin("broken"); !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "broken.csv:3") {
		t.Errorf("pin broken: %v", err)
	}
}

func slicesOf(m map[string]Info) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+" "+v.Error)
	}
	return out
}

// Files added, replaced and removed by hand while the Store is open are
// seen on the next call.
func TestSeesChangesWithoutRestart(t *testing.T) {
	s, dir := openStore(t, Options{})
	if _, err := s.Get("late"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before the file: %v", err)
	}
	write(t, dir, "late.csv", valueCSV(40))
	if got := byName(t, s)["late"]; got.Rows != 40 {
		t.Fatalf("added: %+v", got)
	}
	// Replaced in place, same size: the modification time tells.
	time.Sleep(10 * time.Millisecond)
	write(t, dir, "late.csv", strings.Replace(valueCSV(40), "2020-01-01,100", "2020-01-01,101", 1))
	if got, _ := s.Get("late"); got.Hash != hashOf([]byte(strings.Replace(valueCSV(40), "2020-01-01,100", "2020-01-01,101", 1))) {
		t.Errorf("replaced in place: %+v", got)
	}
	// Replaced by a rename, as an editor or mv does.
	write(t, dir, "other", valueCSV(50))
	if err := os.Rename(filepath.Join(dir, "other"), filepath.Join(dir, "late.csv")); err != nil {
		t.Fatal(err)
	}
	if got := byName(t, s)["late"]; got.Rows != 50 {
		t.Errorf("renamed over: %+v", got)
	}
	os.Remove(filepath.Join(dir, "late.csv"))
	if _, ok := byName(t, s)["late"]; ok {
		t.Error("removed, still listed")
	}
	if _, err := s.Get("late"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after removal: %v", err)
	}
}

// uploadCase is a bad upload and what must be said about it.
type uploadCase struct {
	name, body string
	kind       error  // errors.Is
	line       int    // Problem.Line, for an *InvalidError
	want       string // in the message
}

// Each bad upload is refused with its clear error and changes nothing in
// the folder, even when it would have replaced a good file.
func TestPutRefusesBadInput(t *testing.T) {
	s, dir := openStore(t, Options{MaxBytes: 4096})
	if _, _, err := s.Put("good", strings.NewReader(valueCSV(40)), false); err != nil {
		t.Fatal(err)
	}
	rows := valueCSV(40)
	cases := []uploadCase{
		{"good", "day,value\n2020-01-01,1\n", dataset.ErrMissingColumn, 1, `missing column "date"`},
		{"good", "date,a,b\n2020-01-01,1,2\n", dataset.ErrMissingColumn, 1, "no target column"},
		{"good", "", dataset.ErrEmpty, 0, "empty"},
		{"good", "date,value\n", dataset.ErrEmpty, 0, "no data rows"},
		{"good", strings.Replace(rows, "2020-01-05", "2020-01-5x", 1), dataset.ErrBadDate, 6, `cannot parse "2020-01-5x" as a date`},
		{"good", strings.Replace(rows, "2020-01-05", "2020-01-04", 1), dataset.ErrDuplicateDate, 6, "date 2020-01-04 repeats line 5"},
		{"good", strings.Replace(rows, "2020-01-05", "2020-01-03", 1), dataset.ErrUnsorted, 6, "comes before 2020-01-04"},
		{"good", strings.Replace(rows, "2020-01-05,104", "2020-01-05,NaN", 1), dataset.ErrNonFinite, 6, `"NaN" is not a finite number`},
		{"good", strings.Replace(rows, "2020-01-05,104", "2020-01-05,+Inf", 1), dataset.ErrNonFinite, 6, `"+Inf" is not a finite number`},
		{"good", strings.Replace(rows, "2020-01-05,104", "2020-01-05,1e999", 1), dataset.ErrNonFinite, 6, "not a finite number"},
		{"good", strings.Replace(rows, "2020-01-05,104", "2020-01-05,104,7", 1), dataset.ErrRowLength, 6, "has 3 fields, the header has 2"},
		{"good", strings.Replace(rows, "2020-01-05,104\n", "", 1), dataset.ErrGap, 6, "no row for 2020-01-05"},
		{"good", valueCSV(MinRows - 1), dataset.ErrTooFewRows, 0, "has 29 rows, at least 30"},
		{"good", valueCSV(400), ErrTooLarge, 0, "at most 4096 bytes"},
		{"../good", rows, ErrBadName, 0, "never a path"},
		{"Good", rows, ErrBadName, 0, "dataset name"},
		{"", rows, ErrBadName, 0, "dataset name"},
		{"good.csv", rows, ErrBadName, 0, "dataset name"},
		{strings.Repeat("a", 65), rows, ErrBadName, 0, "dataset name"},
		{"bike", rows, ErrReadOnly, 0, "embedded"},
		{"sp500", rows, ErrReadOnly, 0, "embedded"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%v", c.name, c.kind), func(t *testing.T) {
			before := snapshot(t, dir)
			_, _, err := s.Put(c.name, strings.NewReader(c.body), true)
			checkRefusal(t, err, c.kind, c.line, c.want)
			if after := snapshot(t, dir); !maps.Equal(before, after) {
				t.Errorf("the folder changed:\nbefore %v\nafter  %v", keys(before), keys(after))
			}
		})
	}
	if got, _ := s.Get("good"); got.Rows != 40 || got.Error != "" {
		t.Errorf("the good dataset after the bad uploads: %+v", got)
	}
}

func checkRefusal(t *testing.T, err error, kind error, line int, want string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want %v", err, kind)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
	var ie *InvalidError
	if errors.As(err, &ie) {
		if ie.Problem.Line != line && ie.Problem.Row != line {
			t.Errorf("problem %+v, want line (or row) %d", ie.Problem, line)
		}
		if !errors.Is(err, ErrInvalid) || ie.Problem.Problem == "" {
			t.Errorf("problem %+v of %v", ie.Problem, err)
		}
	} else if line != 0 {
		t.Errorf("%v is not an *InvalidError", err)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s(%d)", k, len(v)))
	}
	return out
}

// An upload creates a dataset; another under the same name is refused
// unless it asks to replace; a replacement is listed at once.
func TestPutCreatesAndReplaces(t *testing.T) {
	s, dir := openStore(t, Options{})
	info, created, err := s.Put("mine", strings.NewReader(valueCSV(40)), false)
	if err != nil || !created || info.Rows != 40 || info.Hash != hashOf([]byte(valueCSV(40))) || info.Bytes != int64(len(valueCSV(40))) || info.Modified == nil {
		t.Fatalf("%+v %v %v", info, created, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "mine.csv")); string(b) != valueCSV(40) {
		t.Errorf("the file holds %d bytes, not the upload", len(b))
	}
	if _, _, err := s.Put("mine", strings.NewReader(valueCSV(50)), false); !errors.Is(err, ErrExists) {
		t.Errorf("a second upload without replace: %v", err)
	}
	info, created, err = s.Put("mine", strings.NewReader(ohlcvCSV(45)), true)
	if err != nil || created || !info.OHLCV || info.Rows != 45 {
		t.Fatalf("replace: %+v %v %v", info, created, err)
	}
	if got, _ := s.Get("mine"); got.Hash != hashOf([]byte(ohlcvCSV(45))) {
		t.Errorf("after replace Get says %+v", got)
	}
	if n := len(snapshot(t, dir)); n != 1 {
		t.Errorf("%d files in the folder, want mine.csv alone: %v", n, keys(snapshot(t, dir)))
	}
}

// A version pinned by a job stays readable, byte for byte, whatever is
// appended or replaced; the dataset cannot be deleted while pinned; the
// copy goes when the last pin is released.
func TestPinKeepsTheVersion(t *testing.T) {
	s, dir := openStore(t, Options{})
	s.Put("mine", strings.NewReader(valueCSV(40)), false)
	v1, release1, err := s.Pin("mine")
	if err != nil || v1.Hash != hashOf([]byte(valueCSV(40))) || v1.Rows != 40 || v1.Path != filepath.Join(s.Dir(), versionsDir, v1.Hash+".csv") {
		t.Fatalf("%+v %v", v1, err)
	}
	_, releaseSame, _ := s.Pin("mine") // a second job on the same bytes shares the copy
	if _, err := s.Append("mine", strings.NewReader("2020-02-10,7\n"), FormatCSV, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("mine"); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "2 queued or running") {
		t.Errorf("delete while pinned: %v", err)
	}
	if got, _ := s.Get("mine"); got.Jobs != 2 {
		t.Errorf("jobs %d, want 2", got.Jobs)
	}
	series, hash, err := LoadVersion("mine", v1.Hash, v1.Path)
	if err != nil || series.Len() != 40 || hash != v1.Hash || series.Name != "mine.csv" {
		t.Fatalf("the pinned version: %v %v %v", series, hash, err)
	}
	v2, release2, err := s.Pin("mine")
	if err != nil || v2.Rows != 41 || v2.Hash == v1.Hash {
		t.Fatalf("after the append: %+v %v", v2, err)
	}
	if _, _, err := LoadVersion("mine", v1.Hash, v2.Path); !errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), "start the job again") {
		t.Errorf("the wrong bytes for a hash: %v", err)
	}
	release1()
	release1() // twice does nothing
	if _, err := os.Stat(v1.Path); err != nil {
		t.Errorf("released by one of two jobs, the copy is gone: %v", err)
	}
	releaseSame()
	if _, err := os.Stat(v1.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("released by both jobs, the copy is still there: %v", err)
	}
	release2()
	if err := s.Delete("mine"); err != nil {
		t.Fatal(err)
	}
	if n := len(snapshot(t, dir)); n != 0 {
		t.Errorf("after delete: %v", keys(snapshot(t, dir)))
	}
	if err := s.Delete("mine"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting twice: %v", err)
	}
	for _, name := range []string{"bike", "sp500"} {
		if err := s.Delete(name); !errors.Is(err, ErrReadOnly) {
			t.Errorf("delete %s: %v", name, err)
		}
	}
}

// Embedded datasets pin without a copy: every worker holds their bytes.
func TestPinEmbedded(t *testing.T) {
	s, _ := openStore(t, Options{})
	v, release, err := s.Pin("bike")
	if err != nil || v.Path != "" || v.Rows != 731 || len(v.Hash) != 64 {
		t.Fatalf("%+v %v", v, err)
	}
	release()
	series, hash, err := LoadVersion("bike", v.Hash, "")
	if err != nil || hash != v.Hash || series.Len() != 731 {
		t.Errorf("%v %v", hash, err)
	}
	if _, _, err := LoadVersion("bike", strings.Repeat("0", 64), ""); !errors.Is(err, ErrHashMismatch) {
		t.Errorf("another hash: %v", err)
	}
	if _, _, err := LoadVersion("mine", "", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("no file, not embedded: %v", err)
	}
	if _, _, err := Embedded().Pin("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("%v", err)
	}
}

// Prune removes the copies no pin holds (a previous process's).
func TestPrune(t *testing.T) {
	s, dir := openStore(t, Options{})
	s.Put("mine", strings.NewReader(valueCSV(40)), false)
	write(t, filepath.Join(dir, versionsDir), strings.Repeat("a", 64)+".csv", "left over")
	v, release, _ := s.Pin("mine")
	if err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	got := keys(snapshot(t, dir))
	if _, err := os.Stat(v.Path); err != nil || len(got) != 2 {
		t.Errorf("after Prune: %v (%v)", got, err)
	}
	release()
}

// While a write waits to be committed, the folder holds the old file whole
// and the new one only under a temporary name that is no dataset.
func TestCommitIsAtomic(t *testing.T) {
	var s *Store
	var checked int
	dir := filepath.Join(t.TempDir(), "d")
	s, err := Open(dir, Options{BeforeCommit: func(tmp string) {
		checked++
		if b, _ := os.ReadFile(filepath.Join(dir, "mine.csv")); string(b) != valueCSV(40) {
			t.Errorf("before the rename the dataset holds %d bytes, want the old %d", len(b), len(valueCSV(40)))
		}
		if !strings.HasPrefix(filepath.Base(tmp), ".") || strings.HasSuffix(tmp, ".csv") {
			t.Errorf("temporary file %s could pass for a dataset", tmp)
		}
		for _, i := range s.files { // List would deadlock: the hook runs locked
			if strings.HasPrefix(i.info.File, ".") {
				t.Errorf("the temporary file is listed: %+v", i.info)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "mine.csv"), []byte(valueCSV(40)), 0o644)
	s.List()
	if _, _, err := s.Put("mine", strings.NewReader(valueCSV(41)), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("mine", strings.NewReader("2020-02-13,3\n"), FormatCSV, nil); !errors.Is(err, dataset.ErrGap) || checked != 1 {
		t.Fatalf("append after the replacement should fail (a gap) before committing: %v, %d commits", err, checked)
	}
}

// A file put in the folder by hand beyond MaxBytes is listed with an error,
// without being read.
func TestListTooLargeFile(t *testing.T) {
	s, dir := openStore(t, Options{MaxBytes: 1000})
	write(t, dir, "huge.csv", valueCSV(100))
	got := byName(t, s)["huge"]
	if got.Rows != 0 || got.Bytes != int64(len(valueCSV(100))) || !strings.Contains(got.Error, "more than the 1000") {
		t.Errorf("%+v", got)
	}
	if _, _, err := s.Pin("huge"); !errors.Is(err, ErrBroken) {
		t.Errorf("pin: %v", err)
	}
	if _, _, err := s.Read("huge"); !errors.Is(err, ErrBroken) {
		t.Errorf("read: %v", err)
	}
}
