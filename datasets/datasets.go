package datasets

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/schema"
)

//go:embed *.csv SOURCES.md
var files embed.FS

// Default is the dataset used when a client names none: an affluence
// series, what the prediction pipeline forecasts.
const Default = "bike"

// MinRows is the fewest rows a dataset of the folder may have: the features
// look back 28 days. Training with the defaults needs more (min_samples, 300
// samples after the lookback), which a run reports when it starts.
const MinRows = 30

// Sources of a dataset (Info.Source).
const (
	SourceEmbedded = "embedded" // built into the binary, read-only
	SourceFolder   = "folder"   // a CSV file of the datasets folder
)

// Info describes one dataset. A file of the folder that does not load is
// listed too, with Error and Problem saying why, and Rows 0.
type Info struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Source      string     `json:"source"`         // SourceEmbedded or SourceFolder
	ReadOnly    bool       `json:"read_only"`      // embedded: no upload, replace, delete or append
	File        string     `json:"file,omitempty"` // the file's name in the folder
	Bytes       int64      `json:"bytes"`
	Modified    *time.Time `json:"modified,omitempty"` // the file's modification time
	Hash        string     `json:"hash,omitempty"`     // SHA-256 of the file's bytes, lower-case hex
	Rows        int        `json:"rows"`
	First       string     `json:"first,omitempty"` // first date, YYYY-MM-DD
	Last        string     `json:"last,omitempty"`  // last date
	Frequency   string     `json:"frequency,omitempty"`
	Target      string     `json:"target,omitempty"` // the column forecasts predict
	OHLCV       bool       `json:"ohlcv"`
	Columns     []string   `json:"columns,omitempty"` // the header, lower case
	Jobs        int        `json:"jobs"`              // queued or running jobs that use it
	Error       string     `json:"error,omitempty"`   // why the file does not load
	Problem     *Problem   `json:"problem,omitempty"` // the same, in fields
}

// usable says whether jobs can read the dataset.
func (i Info) usable() bool { return i.Error == "" }

var descriptions = map[string]string{
	"bike":    "Capital Bikeshare daily rentals, Washington DC (UCI, CC BY 4.0)",
	"sp500":   "S&P 500 daily OHLCV, trading days (vega-datasets, BSD-3-Clause)",
	"transit": "daily public-transit boardings, 5,700 days (generated: benchmarks/cmd/genseries)",
}

var validName = regexp.MustCompile(schema.DatasetNamePattern)

// checkName refuses anything but a short identifier: never a path.
func checkName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("%w %q: a dataset name is 1 to 64 lower-case letters, digits, _ or - (%s), never a path", ErrBadName, name, schema.DatasetNamePattern)
	}
	return nil
}

// Names lists the embedded datasets.
func Names() []string {
	names := make([]string, 0, len(descriptions))
	for n := range descriptions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsEmbedded says whether name is an embedded dataset.
func IsEmbedded(name string) bool { _, ok := descriptions[name]; return ok }

// Load parses the embedded dataset name.
func Load(name string) (*dataset.Series, error) {
	if !IsEmbedded(name) {
		return nil, fmt.Errorf("%w %q (embedded: %s)", ErrNotFound, name, strings.Join(Names(), ", "))
	}
	b, err := files.ReadFile(name + ".csv")
	if err != nil {
		return nil, err
	}
	return dataset.Read(bytes.NewReader(b), name+".csv", dataset.Options{})
}

// embedded holds each embedded dataset, read and described once.
var embedded = sync.OnceValue(func() map[string]*entry {
	out := map[string]*entry{}
	for _, n := range Names() {
		b, err := files.ReadFile(n + ".csv")
		if err != nil {
			panic(err) // embedded by go:embed above: cannot happen
		}
		e := describe(n, n+".csv", b, dataset.Options{})
		e.info.Source, e.info.ReadOnly, e.info.Description, e.info.File = SourceEmbedded, true, descriptions[n], ""
		e.data = b
		out[n] = e
	}
	return out
})

// entry is what the Store knows of one file: its Info, and what appending
// needs.
type entry struct {
	info   Info
	header []string  // the columns, lower case; nil when the file does not load
	last   time.Time // the last date
	data   []byte    // an embedded dataset's bytes; nil for a file of the folder
}

// describe reads b, the bytes of file, as dataset name. A file that does not
// load gives an entry whose Info has Error and Problem.
func describe(name, file string, b []byte, opt dataset.Options) *entry {
	s, err := dataset.Read(bytes.NewReader(b), file, opt)
	if err != nil {
		e := &entry{info: Info{Name: name, Source: SourceFolder, File: file, Bytes: int64(len(b)), Hash: hashOf(b)}}
		e.setError(err)
		return e
	}
	return newEntry(name, file, int64(len(b)), hashOf(b), s, readHeader(b))
}

func (e *entry) setError(err error) {
	p := problemOf(err)
	e.info.Error, e.info.Problem = err.Error(), &p
	e.info.Rows, e.info.First, e.info.Last, e.info.Frequency, e.info.Target, e.info.Columns = 0, "", "", "", "", nil
	e.header = nil
}

// readHeader returns the columns of a file the loader accepted, as the
// loader names them: trimmed, lower case.
func readHeader(b []byte) []string {
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\uFEFF"))))
	h, err := cr.Read()
	if err != nil {
		return nil // the loader read it: cannot happen
	}
	for i := range h {
		h[i] = strings.ToLower(strings.TrimSpace(h[i]))
	}
	return h
}

func hashOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func day(t time.Time) string { return t.Format(time.DateOnly) }
