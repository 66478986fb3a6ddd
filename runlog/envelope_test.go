package runlog

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"strconv"
	"testing"
)

func TestEnvelope(t *testing.T) {
	tests := []struct {
		name  string
		msg   string
		runID string
		seq   uint64
		want  string
	}{
		{"seed message", `{"type":"training_start","use_cv":true,"total_folds":5}`, "r1", 7,
			`{"type":"training_start","use_cv":true,"total_folds":5,"run_id":"r1","seq":7,"attempt":2}`},
		{"empty object", `{}`, "r", 1, `{"run_id":"r","seq":1,"attempt":2}`},
		{"empty object with spaces", "{ \n}", "r", 1, "{ \n\"run_id\":\"r\",\"seq\":1,\"attempt\":2}"},
		{"nested objects", `{"type":"prediction_delta","predictions":[{"mu":1,"x":{"y":{}}}]}`, "r", 2,
			`{"type":"prediction_delta","predictions":[{"mu":1,"x":{"y":{}}}],"run_id":"r","seq":2,"attempt":2}`},
		{"braces in strings", `{"type":"training_error","error":"bad } token {"}`, "r", 3,
			`{"type":"training_error","error":"bad } token {","run_id":"r","seq":3,"attempt":2}`},
		{"escaped quote before brace", `{"e":"a\"}"}`, "r", 4, `{"e":"a\"}","run_id":"r","seq":4,"attempt":2}`},
		{"surrounding whitespace", " \t{\"type\":\"x\"}\r\n", "r", 5, " \t{\"type\":\"x\",\"run_id\":\"r\",\"seq\":5,\"attempt\":2}"},
		{"run id needing escapes", `{"type":"x"}`, "a\"b\\c</d>", 6,
			`{"type":"x","run_id":"a\"b\\c\u003c/d\u003e","seq":6,"attempt":2}`},
		{"largest seq", `{"type":"x"}`, "r", 1<<64 - 1, `{"type":"x","run_id":"r","seq":18446744073709551615,"attempt":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := []byte(tt.msg)
			got := Envelope(msg, tt.runID, tt.seq, 2)
			if string(got) != tt.want {
				t.Errorf("Envelope(%q) = %q, want %q", tt.msg, got, tt.want)
			}
			if string(msg) != tt.msg {
				t.Errorf("Envelope modified its input: %q", msg)
			}
			var m map[string]any
			if err := json.Unmarshal(got, &m); err != nil {
				t.Fatalf("result is not JSON: %v", err)
			}
			if m["run_id"] != tt.runID {
				t.Errorf("run_id = %v, want %q", m["run_id"], tt.runID)
			}
		})
	}
}

func TestEnvelopeRejectsNonObjects(t *testing.T) {
	for _, msg := range []string{"", " ", "{", "}", "[1,2]", `"{}"`, "null", `{"a":1`, `"a":1}`} {
		if got := Envelope([]byte(msg), "r", 1, 1); got != nil {
			t.Errorf("Envelope(%q) = %q, want nil", msg, got)
		}
	}
}

// FuzzEnvelope checks that for any JSON object without run_id, seq and
// attempt the result decodes to the same fields plus those three.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{`{}`, `{"type":"x","a":[1,{"b":"}"}]}`, ` {"k":"\u007d"} `, `{"n":1e3,"z":null}`} {
		f.Add([]byte(s), "run", uint64(1))
	}
	f.Fuzz(func(t *testing.T, msg []byte, runID string, seq uint64) {
		var in map[string]any
		if json.Unmarshal(msg, &in) != nil || in == nil {
			return
		}
		if _, ok := in["run_id"]; ok {
			return
		}
		if _, ok := in["seq"]; ok {
			return
		}
		if _, ok := in["attempt"]; ok {
			return
		}
		out := Envelope(msg, runID, seq, 3)
		var got map[string]any
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("Envelope(%q) = %q: %v", msg, out, err)
		}
		want := make(map[string]any, len(in)+2)
		dec = json.NewDecoder(bytes.NewReader(msg))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		var id string
		if b, _ := json.Marshal(runID); json.Unmarshal(b, &id) != nil {
			t.Fatal("runID does not round-trip")
		}
		maps.Copy(want, map[string]any{"run_id": id, "seq": json.Number(strconv.FormatUint(seq, 10)), "attempt": json.Number("3")})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Envelope(%q) = %q\ndecoded %v\nwant    %v", msg, out, got, want)
		}
	})
}
