package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// TypeChartUpdate is the seed's extension 3 ("Live Chart Data").
const TypeChartUpdate = "chart_update"

// MaxChartRows is the most rows one ChartUpdate carries: an append of more
// rows is sent as several messages numbered by Part of Parts, each well
// under the 1 MiB frame that common clients accept (about 100 bytes a row
// for OHLCV).
const MaxChartRows = 2000

// ChartUpdate is the seed's extension 3 ("Live Chart Data: incremental OHLCV
// candle updates, reduces need for full chart reload"): rows just appended
// to a dataset, sent on /ws to every client that follows all runs. It
// belongs to no run: it carries no run_id or seq and is never replayed. A
// chart loads the series once (GET /api/datasets/{name}?format=json), then
// applies each chart_update whose PreviousHash is the hash of what it
// holds; on a mismatch (it missed one, or the file was replaced) it loads
// again with ?since= its last date.
//
// Rows hold the dataset's columns in file order (Columns), the date first
// as YYYY-MM-DD: the target, and for OHLCV open, high, low, close and
// volume, are JSON numbers; other columns are strings. An append of more
// than MaxChartRows rows is split into Parts messages, in order; Hash is
// the dataset's hash once every part is applied, the same on each part.
type ChartUpdate struct {
	Type         string     `json:"type"` // TypeChartUpdate
	Dataset      string     `json:"dataset"`
	Target       string     `json:"target"`  // the column forecasts predict
	OHLCV        bool       `json:"ohlcv"`   // open, high, low and close columns: draw candles
	Columns      []string   `json:"columns"` // the dataset's columns, date first
	Rows         []ChartRow `json:"rows"`
	Part         int        `json:"part"`          // 1 to Parts
	Parts        int        `json:"parts"`         // messages this append spans
	Appended     int        `json:"appended"`      // rows appended, over all parts
	TotalRows    int        `json:"total_rows"`    // rows of the dataset after the append
	Last         string     `json:"last"`          // the dataset's last date after the append
	Hash         string     `json:"hash"`          // SHA-256 of the file after the append
	PreviousHash string     `json:"previous_hash"` // SHA-256 of the file it was appended to
}

// ChartRow is one row of a dataset as JSON: an object whose first member is
// "date" (YYYY-MM-DD), then one member per column, in the file's order.
type ChartRow struct {
	Date   string
	Values []ChartValue // every column but the date, in order
}

// ChartValue is one column of a ChartRow. Value is its JSON: a number, or a
// string for a column that does not hold numbers.
type ChartValue struct {
	Column string
	Value  json.RawMessage
}

// NumberValue is the JSON of a finite number as encoding/json writes it:
// the shortest decimal that parses back to v, without an exponent from
// 1e-6 to 1e21. NaN and ±Inf, which a dataset never holds, give null.
func NumberValue(v float64) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// StringValue is the JSON of a string.
func StringValue(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// MarshalJSON writes the row as one object, in column order.
func (r ChartRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"date":`)
	b.Write(StringValue(r.Date))
	for _, v := range r.Values {
		if v.Column == "date" {
			return nil, errors.New("schema: a chart row has a second date column")
		}
		b.WriteByte(',')
		b.Write(StringValue(v.Column))
		b.WriteByte(':')
		if !isScalar(v.Value) {
			return nil, fmt.Errorf("schema: chart row column %q is %q, not a JSON number or string", v.Column, v.Value)
		}
		b.Write(v.Value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// isScalar says whether raw is one JSON number or string.
func isScalar(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || !json.Valid(raw) {
		return false
	}
	return raw[0] == '"' || raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'
}

// UnmarshalJSON reads one row object, keeping its members' order. It
// refuses a row that is not an object, has no "date" or a date that is not
// a string, names a member twice, or holds anything but numbers and
// strings.
func (r *ChartRow) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil {
		return err
	} else if d, ok := t.(json.Delim); !ok || d != '{' {
		return errors.New("a row must be a JSON object")
	}
	row := ChartRow{}
	seen := map[string]bool{}
	haveDate := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key := t.(string) // object keys are strings
		if seen[key] {
			return fmt.Errorf("the row names %q twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if key == "date" {
			if err := json.Unmarshal(raw, &row.Date); err != nil {
				return fmt.Errorf(`"date" is %s, want a string YYYY-MM-DD`, raw)
			}
			haveDate = true
			continue
		}
		if !isScalar(raw) {
			return fmt.Errorf("column %q is %s, want a number or a string", key, raw)
		}
		row.Values = append(row.Values, ChartValue{Column: key, Value: raw})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if !haveDate {
		return errors.New(`the row has no "date"`)
	}
	*r = row
	return nil
}
