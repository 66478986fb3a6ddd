package schema

import (
	"encoding/json"
	"strings"
	"testing"
)

// A ChartRow writes its columns in order and reads them back in the same
// order, refusing what a row of a CSV file cannot be.
func TestChartRowJSON(t *testing.T) {
	in := `{"date":"2024-01-02","value":12.5,"note":"snow","count":-3e2}`
	var r ChartRow
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if r.Date != "2024-01-02" || len(r.Values) != 3 || r.Values[0].Column != "value" || r.Values[2].Column != "count" {
		t.Fatalf("%+v", r)
	}
	out, err := json.Marshal(r)
	if err != nil || string(out) != in {
		t.Errorf("round trip: %s %v, want %s", out, err, in)
	}
	// The date need not come first on input; it always does on output.
	if err := json.Unmarshal([]byte(`{"value":1,"date":"2024-01-03"}`), &r); err != nil {
		t.Fatal(err)
	}
	if out, _ := json.Marshal(r); string(out) != `{"date":"2024-01-03","value":1}` {
		t.Errorf("%s", out)
	}
	for in, want := range map[string]string{
		`[1]`:                         "JSON object",
		`{"value":1}`:                 `no "date"`,
		`{"date":20240101,"value":1}`: `"date" is 20240101`,
		`{"date":"2024-01-01","value":1,"value":2}`: `names "value" twice`,
		`{"date":"2024-01-01","value":[1]}`:         `column "value" is [1]`,
		`{"date":"2024-01-01","value":null}`:        `column "value" is null`,
		`{"date":"2024-01-01","value":true}`:        `column "value" is true`,
		`{"date":"2024-01-01","value":{}}`:          `column "value" is {}`,
		`{"date":"2024-01-01","value":1`:            "unexpected end",
	} {
		err := json.Unmarshal([]byte(in), &r)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", in, err, want)
		}
	}
	if _, err := json.Marshal(ChartRow{Date: "2024-01-01", Values: []ChartValue{{"value", json.RawMessage(`[1]`)}}}); err == nil {
		t.Error("marshalled a row whose value is an array")
	}
}
