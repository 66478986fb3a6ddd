package datasets

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/schema"
)

// Format is how rows to append are written.
type Format int

const (
	// FormatCSV is CSV rows in the dataset's column order, or under a
	// header naming the dataset's columns in any order.
	FormatCSV Format = iota
	// FormatJSON is an array of row objects, or {"rows": [...]}, each
	// with the dataset's columns as members (schema.ChartRow).
	FormatJSON
)

// Appended says what an Append did.
type Appended struct {
	Info         Info              // the dataset after the append
	PreviousHash string            // the hash of the file the rows were appended to
	Rows         []schema.ChartRow // the rows appended, in order
}

// Append adds rows, read from body in format, after the last row of
// dataset name. The rows must have the dataset's columns, dates strictly
// after its last date and in order, and finite numbers; and the dataset
// must still load once they are appended (no gap in a daily series, no
// weekend in a business-day one). Otherwise Append fails with an
// *InvalidError naming the body's line (CSV, File "rows") or row (JSON,
// File "row N") and the problem, and nothing changes.
//
// The new file is written whole and renamed over the old one, so a crash
// leaves the old file or the new one, never a torn last line; the cost is a
// copy of the file per append. committed, when not nil, is called with the
// result once the new file is in place, before any other write to the
// Store: in commit order, so a broadcast from it keeps that order. It
// must not call the Store.
//
// An embedded dataset is read-only (ErrReadOnly); a file that does not load
// cannot be appended to (ErrBroken).
func (s *Store) Append(name string, body io.Reader, format Format, committed func(Appended)) (Appended, error) {
	if e, err := s.lookup(name); err != nil {
		return Appended{}, err
	} else if e != nil {
		return Appended{}, fmt.Errorf("%w: %q is embedded in the server; upload a copy under another name to append to it", ErrReadOnly, name)
	}
	lim := newLimitReader(body, s.opt.MaxBytes)
	raw, _ := io.ReadAll(lim)
	if lim.err != nil {
		return Appended{}, lim.err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	e, old, err := s.readLocked(name)
	if err != nil {
		return Appended{}, err
	}
	if !e.info.usable() {
		return Appended{}, fmt.Errorf("%w: %s; replace the file before appending to it", ErrBroken, e.info.Error)
	}
	var rows *newRows
	if format == FormatJSON {
		rows, err = parseJSONRows(raw, e.header)
	} else {
		rows, err = parseCSVRows(raw, e.header)
	}
	if err != nil {
		return Appended{}, err
	}
	dates, err := rows.check(e)
	if err != nil {
		return Appended{}, err
	}

	// The new file: the old bytes as they are, then the rows in the file's
	// own line ending.
	file := fileOf(name)
	crlf := false
	if i := bytes.IndexByte(old, '\n'); i > 0 && old[i-1] == '\r' {
		crlf = true
	}
	buf := bytes.NewBuffer(slices.Clip(old))
	if len(old) > 0 && old[len(old)-1] != '\n' {
		if crlf {
			buf.WriteString("\r\n")
		} else {
			buf.WriteByte('\n')
		}
	}
	oldLines := bytes.Count(buf.Bytes(), []byte("\n"))
	cw := csv.NewWriter(buf)
	cw.UseCRLF = crlf
	for _, r := range rows.rows {
		cw.Write(r.fields)
	}
	cw.Flush()
	combined := buf.Bytes()
	if int64(len(combined)) > s.opt.MaxBytes {
		return Appended{}, fmt.Errorf("%w: with these rows %s would have %d bytes, more than the %d the server accepts (--max-dataset-bytes)",
			ErrTooLarge, file, len(combined), s.opt.MaxBytes)
	}
	series, err := dataset.Read(bytes.NewReader(combined), file, dataset.Options{MinRows: MinRows})
	if err != nil {
		var de *dataset.Error
		if errors.As(err, &de) && de.Line > oldLines && de.Line-oldLines-1 < len(rows.rows) {
			i := de.Line - oldLines - 1
			return Appended{}, rows.at(i, de.Column, de.Err, "appended to %s it gives %v", file, err)
		}
		return Appended{}, invalid(err)
	}
	if err := s.writeFile(filepath.Join(s.dir, file), combined); err != nil {
		return Appended{}, err
	}
	ne := newEntry(name, file, int64(len(combined)), hashOf(combined), series, e.header)
	s.remember(file, ne)
	out := Appended{Info: s.infoLocked(ne), PreviousHash: e.info.Hash, Rows: rows.chartRows(e, dates)}
	if committed != nil {
		committed(out)
	}
	return out, nil
}

// newRows are rows to append, each with its fields in the dataset's column
// order and where it was in the body.
type newRows struct {
	header []string
	rows   []newRow
	json   bool // rows are located by row number, not line
}

type newRow struct {
	fields []string
	where  int // CSV: the body's line; JSON: the 1-based row
}

// place says where row i was, for messages.
func (n *newRows) place(i int) string {
	if n.json {
		return fmt.Sprintf("row %d", n.rows[i].where)
	}
	return fmt.Sprintf("line %d", n.rows[i].where)
}

// at is an *InvalidError about row i (column may be ""), of kind.
func (n *newRows) at(i int, column string, kind error, format string, args ...any) error {
	var de *dataset.Error
	if n.json {
		de = located(fmt.Sprintf("row %d", n.rows[i].where), 0, column, kind, format, args...)
	} else {
		de = located("rows", n.rows[i].where, column, kind, format, args...)
	}
	e := invalid(de)
	if n.json {
		e.Problem.Row = n.rows[i].where
	}
	return e
}

// check reads each row alone with the loader (dates, numbers, as the file
// is read), then checks the dates' order against each other and the
// dataset's last date. It returns each row's date.
func (n *newRows) check(e *entry) ([]time.Time, error) {
	dateCol := n.header[slices.Index(n.header, "date")]
	dates := make([]time.Time, len(n.rows))
	var one bytes.Buffer
	for i, r := range n.rows {
		one.Reset()
		cw := csv.NewWriter(&one)
		cw.Write(n.header)
		cw.Write(r.fields)
		cw.Flush()
		s, err := dataset.Read(bytes.NewReader(one.Bytes()), "rows", dataset.Options{Target: e.info.Target})
		if err != nil {
			var de *dataset.Error
			if errors.As(err, &de) && de.Err != nil {
				return nil, n.at(i, de.Column, de.Err, "%s", de.Err.Error())
			}
			return nil, n.at(i, "", dataset.ErrSyntax, "%v", err)
		}
		d := s.Dates[0]
		dates[i] = d
		switch {
		case i == 0 && d.Equal(e.last):
			return nil, n.at(i, dateCol, dataset.ErrDuplicateDate, "date %s is already the dataset's last date; append only rows dated after it", day(d))
		case i == 0 && d.Before(e.last):
			return nil, n.at(i, dateCol, dataset.ErrUnsorted, "date %s is before the dataset's last date %s; append only rows dated after it", day(d), day(e.last))
		case i > 0 && d.Equal(dates[i-1]):
			return nil, n.at(i, dateCol, dataset.ErrDuplicateDate, "date %s repeats %s", day(d), n.place(i-1))
		case i > 0 && d.Before(dates[i-1]):
			return nil, n.at(i, dateCol, dataset.ErrUnsorted, "date %s comes before %s on %s; rows must be sorted by date", day(d), day(dates[i-1]), n.place(i-1))
		}
	}
	// The calendar the loader inferred must still hold once appended.
	for i, d := range dates {
		prev := e.last
		if i > 0 {
			prev = dates[i-1]
		}
		switch wd := d.Weekday(); {
		case e.info.Frequency == dataset.BusinessDay.String() && (wd == time.Saturday || wd == time.Sunday):
			return nil, n.at(i, dateCol, dataset.ErrGap, "%s falls on a %s: the dataset is a business-day series, with no weekend rows", day(d), wd)
		case e.info.Frequency == dataset.Daily.String() && !d.Equal(prev.AddDate(0, 0, 1)):
			missing := day(prev.AddDate(0, 0, 1))
			if to := d.AddDate(0, 0, -1); !to.Equal(prev.AddDate(0, 0, 1)) {
				missing += ".." + day(to)
			}
			return nil, n.at(i, dateCol, dataset.ErrGap, "no row for %s: the dataset is a daily series, which must stay complete", missing)
		}
	}
	return dates, nil
}

// chartRows returns the rows as /ws sends them: the date as YYYY-MM-DD,
// the columns the loader reads as numbers as JSON numbers, the others as
// strings.
func (n *newRows) chartRows(e *entry, dates []time.Time) []schema.ChartRow {
	out := make([]schema.ChartRow, len(n.rows))
	for i, r := range n.rows {
		out[i] = chartRow(n.header, e.info.Target, e.info.OHLCV, day(dates[i]), r.fields)
	}
	return out
}

// ohlcvColumns are the columns an OHLCV file holds numbers in (volume is
// optional).
var ohlcvColumns = []string{"open", "high", "low", "close", "volume"}

// chartRow makes one row of fields (in header order, already read by the
// loader) into a schema.ChartRow dated date.
func chartRow(header []string, target string, ohlcv bool, date string, fields []string) schema.ChartRow {
	row := schema.ChartRow{Date: date, Values: make([]schema.ChartValue, 0, len(header)-1)}
	for j, col := range header {
		if col == "date" {
			continue
		}
		v := strings.TrimSpace(fields[j])
		val := schema.StringValue(fields[j])
		if col == target || ohlcv && slices.Contains(ohlcvColumns, col) {
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				val = schema.NumberValue(x)
			}
		}
		row.Values = append(row.Values, schema.ChartValue{Column: col, Value: val})
	}
	return row
}

// parseCSVRows reads CSV rows. A first line naming "date" is a header: its
// columns must be the dataset's, in any order. Otherwise every line holds
// the dataset's columns in order.
func parseCSVRows(raw []byte, header []string) (*newRows, error) {
	n := &newRows{header: header}
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\uFEFF"))))
	cr.FieldsPerRecord = -1
	var order []int // the body's column of each of the dataset's columns
	first := true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, invalid(located("rows", pe.Line, "", dataset.ErrSyntax, "malformed CSV: %v", pe.Err))
		} else if err != nil {
			return nil, fmt.Errorf("reading the rows: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if strings.TrimSpace(strings.Join(rec, "")) == "" {
			continue
		}
		if first {
			first = false
			if slices.ContainsFunc(rec, func(f string) bool { return strings.EqualFold(strings.TrimSpace(f), "date") }) {
				if order, err = columnOrder(rec, header, line); err != nil {
					return nil, err
				}
				continue
			}
		}
		if len(rec) != len(header) {
			return nil, invalid(located("rows", line, "", dataset.ErrRowLength, "has %d fields, the dataset has %d (%s)",
				len(rec), len(header), strings.Join(header, ",")))
		}
		fields := make([]string, len(header))
		for i := range fields {
			j := i
			if order != nil {
				j = order[i]
			}
			fields[i] = strings.TrimSpace(rec[j]) // as the loader reads them
		}
		n.rows = append(n.rows, newRow{fields: fields, where: line})
	}
	if len(n.rows) == 0 {
		return nil, invalid(located("rows", 0, "", dataset.ErrEmpty, "no rows to append"))
	}
	return n, nil
}

// columnOrder maps the dataset's columns to the columns of got, a header
// on line, which must name the same columns.
func columnOrder(got, want []string, line int) ([]int, error) {
	index := map[string]int{}
	for i, h := range got {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := index[h]; dup {
			return nil, invalid(located("rows", line, h, dataset.ErrBadHeader, "the name appears twice"))
		}
		index[h] = i
	}
	order := make([]int, len(want))
	for i, w := range want {
		j, ok := index[w]
		if !ok {
			return nil, invalid(located("rows", line, "", dataset.ErrMissingColumn, "the rows have no column %q: they must have the dataset's columns (%s)",
				w, strings.Join(want, ",")))
		}
		order[i] = j
		delete(index, w)
	}
	for h := range index {
		return nil, invalid(located("rows", line, h, dataset.ErrUnknownColumn, "not a column of the dataset (%s)", strings.Join(want, ",")))
	}
	return order, nil
}

// parseJSONRows reads a JSON array of row objects, or {"rows": [...]}.
// Each row has exactly the dataset's columns as members; a value is a
// number or a string (what the file would hold).
func parseJSONRows(raw []byte, header []string) (*newRows, error) {
	n := &newRows{header: header, json: true}
	bad := func(format string, args ...any) error {
		return invalid(located("rows", 0, "", dataset.ErrSyntax, format, args...))
	}
	var list []json.RawMessage
	t := bytes.TrimSpace(raw)
	dec := json.NewDecoder(bytes.NewReader(t))
	switch {
	case len(t) > 0 && t[0] == '[':
		if err := dec.Decode(&list); err != nil {
			return nil, bad("malformed JSON: %v", err)
		}
	case len(t) > 0 && t[0] == '{':
		var body struct {
			Rows []json.RawMessage `json:"rows"`
		}
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return nil, bad(`malformed JSON: %v; want {"rows": [{"date": "YYYY-MM-DD", ...}]}`, err)
		}
		list = body.Rows
	default:
		return nil, bad(`want JSON rows: [{"date": "YYYY-MM-DD", ...}] or {"rows": [...]}`)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("malformed JSON: data after the rows")
	}
	index := map[string]int{}
	for i, h := range header {
		index[h] = i
	}
	for i, m := range list {
		n.rows = append(n.rows, newRow{where: i + 1})
		var r schema.ChartRow
		if err := json.Unmarshal(m, &r); err != nil {
			return nil, n.at(i, "", dataset.ErrSyntax, "%v", err)
		}
		fields := make([]string, len(header))
		set := make([]bool, len(header))
		fields[index["date"]], set[index["date"]] = r.Date, true
		for _, v := range r.Values {
			j, ok := index[v.Column]
			if !ok {
				return nil, n.at(i, v.Column, dataset.ErrUnknownColumn, "not a column of the dataset (%s)", strings.Join(header, ","))
			}
			if v.Value[0] == '"' {
				json.Unmarshal(v.Value, &fields[j]) // ChartRow checked it is a string
			} else {
				fields[j] = string(v.Value) // a JSON number, which the loader reads
			}
			set[j] = true
		}
		if j := slices.Index(set, false); j >= 0 {
			return nil, n.at(i, header[j], dataset.ErrMissingColumn, "missing: every row needs the dataset's columns (%s)", strings.Join(header, ","))
		}
		n.rows[i].fields = fields
	}
	if len(n.rows) == 0 {
		return nil, bad("no rows to append")
	}
	return n, nil
}

// newEntry describes file, of size bytes hashing to hash, which the loader
// read as series under header.
func newEntry(name, file string, size int64, hash string, series *dataset.Series, header []string) *entry {
	e := &entry{header: header, last: series.Dates[series.Len()-1]}
	e.info = Info{Name: name, Source: SourceFolder, File: file, Bytes: size, Hash: hash,
		Rows: series.Len(), First: day(series.Dates[0]), Last: day(e.last), Frequency: series.Freq.String(),
		Target: series.Target, OHLCV: series.OHLCV, Columns: slices.Clone(header)}
	return e
}
