package datasets

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/schema"
)

// Series is a dataset's rows as JSON (GET /api/datasets/{name}?format=json):
// what a chart loads before it applies chart_updates, which carry rows of
// the same form.
type Series struct {
	Info
	Since string            `json:"since,omitempty"` // only rows dated after this day are given
	Data  []schema.ChartRow `json:"data"`            // the rows, in date order
}

// Read returns the bytes of dataset name's file as they are (a file that
// does not load too, so it can be fetched and fixed), and its Info.
func (s *Store) Read(name string) (Info, []byte, error) {
	if e, err := s.lookup(name); err != nil {
		return Info{}, nil, err
	} else if e != nil {
		return e.info, e.data, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, b, err := s.readLocked(name)
	if err != nil {
		return Info{}, nil, err
	}
	if b == nil { // beyond MaxBytes: not read
		return Info{}, nil, fmt.Errorf("%w: %s", ErrBroken, e.info.Error)
	}
	return s.infoLocked(e), b, nil
}

// Rows returns dataset name's rows dated after since (every row when since
// is zero) as JSON rows. A file that does not load fails with ErrBroken.
func (s *Store) Rows(name string, since time.Time) (*Series, error) {
	info, b, err := s.Read(name)
	if err != nil {
		return nil, err
	}
	dates, header, recs, err := records(info, b)
	if err != nil {
		return nil, err
	}
	out := &Series{Info: info, Data: []schema.ChartRow{}}
	if !since.IsZero() {
		out.Since = day(since)
	}
	for i, r := range recs {
		if dates[i].After(since) {
			out.Data = append(out.Data, chartRow(header, info.Target, info.OHLCV, day(dates[i]), r))
		}
	}
	return out, nil
}

// CSVSince returns dataset name's header and its rows dated after since,
// as CSV, and its Info. A file that does not load fails with ErrBroken.
func (s *Store) CSVSince(name string, since time.Time) (Info, []byte, error) {
	info, b, err := s.Read(name)
	if err != nil {
		return Info{}, nil, err
	}
	dates, header, recs, err := records(info, b)
	if err != nil {
		return Info{}, nil, err
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.Write(header)
	for i, r := range recs {
		if dates[i].After(since) {
			cw.Write(r)
		}
	}
	cw.Flush()
	return info, buf.Bytes(), cw.Error()
}

// records reads b, a file the loader accepts, into its dates, its header
// and its records (fields as written), skipping the blank lines the loader
// skips.
func records(info Info, b []byte) ([]time.Time, []string, [][]string, error) {
	if !info.usable() {
		return nil, nil, nil, fmt.Errorf("%w: %s", ErrBroken, info.Error)
	}
	s, err := dataset.Read(bytes.NewReader(b), info.Name+".csv", dataset.Options{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrBroken, err)
	}
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\uFEFF"))))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrBroken, err)
	}
	for i := range header {
		header[i] = strings.ToLower(strings.TrimSpace(header[i]))
	}
	recs := make([][]string, 0, s.Len())
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %v", ErrBroken, err)
		}
		if len(rec) != len(header) && strings.TrimSpace(strings.Join(rec, "")) == "" {
			continue // a line of spaces, as the loader skips
		}
		recs = append(recs, rec)
	}
	if len(recs) != s.Len() {
		return nil, nil, nil, fmt.Errorf("%w: %d records for %d rows", ErrBroken, len(recs), s.Len())
	}
	return s.Dates, header, recs, nil
}
