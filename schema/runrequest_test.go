package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDecodeRunRequestAccepts(t *testing.T) {
	tests := []struct {
		name, body string
		want       RunRequest
	}{
		{"empty object: all defaults", `{}`, RunRequest{}},
		{"whitespace around", " \n\t{ }\r\n ", RunRequest{}},
		{"everything", `{"dataset":"bike","folds":5,"epochs":25,"batch_size":256,"hidden":[64,64],"lr":0.001,"seed":7,"device":"auto","patience":5,"horizons":30,"on_oom":"halve"}`,
			RunRequest{Dataset: "bike", Folds: 5, Epochs: 25, BatchSize: 256, Hidden: []int{64, 64}, LR: 0.001, Seed: 7, Device: DeviceAuto, Patience: ptr(5), Horizons: 30, OnOOM: OnOOMHalve}},
		{"upper bounds", `{"dataset":"` + strings.Repeat("z", 64) + `","folds":20,"epochs":1000,"batch_size":65536,"hidden":[4096,1,1,1,1,1,1,4096],"lr":1,"seed":18446744073709551615,"device":"gpu","patience":1000,"horizons":365}`,
			RunRequest{Dataset: strings.Repeat("z", 64), Folds: 20, Epochs: 1000, BatchSize: 65536, Hidden: []int{4096, 1, 1, 1, 1, 1, 1, 4096}, LR: 1, Seed: 1<<64 - 1, Device: DeviceGPU, Patience: ptr(1000), Horizons: 365}},
		{"explicit zeros are defaults", `{"dataset":"","folds":0,"epochs":0,"batch_size":0,"hidden":[],"lr":0,"seed":0,"device":"","horizons":0}`,
			RunRequest{Hidden: []int{}}},
		{"patience 0 turns early stopping off", `{"patience":0}`, RunRequest{Patience: ptr(0)}},
		{"escaped key", `{"fold\u0073":3}`, RunRequest{Folds: 3}},
		{"dataset with digits, dash, underscore", `{"dataset":"sp500_daily-2"}`, RunRequest{Dataset: "sp500_daily-2"}},
		{"lr exponent", `{"lr":5e-4,"device":"cpu"}`, RunRequest{LR: 5e-4, Device: DeviceCPU}},
		{"lr exactly 1, written oddly", `{"lr":100e-2}`, RunRequest{LR: 1}},
		{"lr 1 with trailing zeros", `{"lr":1.000000000000000000000}`, RunRequest{LR: 1}},
		{"lr 0.1e1", `{"lr":0.1E+1}`, RunRequest{LR: 1}},
		{"lr negative zero is the default", `{"lr":-0.0e5}`, RunRequest{}},
		{"lr smallest float", `{"lr":5e-324}`, RunRequest{LR: 5e-324}},
		{"tune", `{"kind":"tune","trials":12,"epochs":5}`, RunRequest{Kind: RunKindTune, Trials: 12, Epochs: 5}},
		{"tune with default trials", `{"kind":"tune","trials":0}`, RunRequest{Kind: RunKindTune}},
		{"tune upper bound", `{"kind":"tune","trials":50}`, RunRequest{Kind: RunKindTune, Trials: 50}},
		{"kind train", `{"kind":"train"}`, RunRequest{Kind: RunKindTrain}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRunRequest(strings.NewReader(tt.body), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if err := ValidateRunRequest([]byte(tt.body)); err != nil {
				t.Errorf("the body is not valid against run_request.json: %v", err)
			}
		})
	}
}

func TestDecodeRunRequestRejects(t *testing.T) {
	tests := []struct {
		name, body string
		field      string // RequestError.Field
		want       string // in the message
	}{
		{"empty body", ``, "", "body is empty"},
		{"blank body", "  \n", "", "body is empty"},
		{"null body", `null`, "", "one JSON object"},
		{"array body", `[{"folds":3}]`, "", "one JSON object"},
		{"string body", `"bike"`, "", "one JSON object"},
		{"truncated", `{"folds":3`, "", "malformed JSON"},
		{"bad syntax", `{"folds":3,}`, "", "malformed JSON"},
		{"number key", `{1:2}`, "", "malformed JSON"},
		{"trailing object", `{"folds":3}{"folds":4}`, "", "after the JSON object"},
		{"trailing garbage", `{"folds":3} x`, "", "after the JSON object"},
		{"unknown field", `{"folds":3,"path":"/etc/passwd"}`, "path", "unknown field; known fields are dataset"},
		{"case differs", `{"Folds":3}`, "Folds", `unknown field; names are case-sensitive: did you mean "folds"?`},
		{"odd unknown key", `{"a\nb":1}`, `"a\nb"`, "unknown field"},
		{"long unknown key", `{"` + strings.Repeat("k", 100) + `":1}`, `"` + strings.Repeat("k", 64) + `"`, "unknown field"},
		{"type field", `{"type":"train"}`, "type", "unknown field"},
		{"unknown kind", `{"kind":"search"}`, "kind", `must be one of "train", "tune" (empty or absent: train), got "search"`},
		{"trials too many", `{"kind":"tune","trials":51}`, "trials", "must be from 1 to 50"},
		{"trials negative", `{"kind":"tune","trials":-1}`, "trials", "must be from 1 to 50"},
		{"trials without tune", `{"trials":4}`, "trials", `applies only to "kind":"tune", got 4 with kind "train"`},
		{"trials a string", `{"kind":"tune","trials":"4"}`, "trials", `must be an integer from 1 to 50`},
		{"tune with lr", `{"kind":"tune","lr":0.01}`, "lr", `is searched by "kind":"tune"`},
		{"tune with hidden", `{"kind":"tune","hidden":[8]}`, "hidden", `is searched by "kind":"tune"`},
		{"tune with batch_size", `{"batch_size":64,"kind":"tune"}`, "batch_size", `is searched by "kind":"tune"`},
		{"duplicate", `{"folds":3,"folds":4}`, "folds", "given twice"},
		{"null field", `{"epochs":null}`, "epochs", "must be an integer from 1 to 1000 (0 or absent: server default), got null"},
		{"string for int", `{"folds":"5"}`, "folds", `must be an integer from 1 to 20 (0 or absent: server default), got a string "5"`},
		{"float for int", `{"epochs":2.5}`, "epochs", "must be an integer from 1 to 1000"},
		{"int written as float", `{"epochs":10.0}`, "epochs", "got a number 10.0"},
		{"bool for int", `{"batch_size":true}`, "batch_size", "got a boolean true"},
		{"overflow", `{"folds":99999999999999999999}`, "folds", "must be an integer"},
		{"folds over", `{"folds":21}`, "folds", "must be from 1 to 20 (0 or absent: server default), got 21"},
		{"folds negative", `{"folds":-1}`, "folds", "must be from 1 to 20"},
		{"epochs over", `{"epochs":1001}`, "epochs", "must be from 1 to 1000"},
		{"batch over", `{"batch_size":65537}`, "batch_size", "must be from 1 to 65536"},
		{"hidden too deep", `{"hidden":[1,1,1,1,1,1,1,1,1]}`, "hidden", "must have 1 to 8 layers, got 9"},
		{"hidden too wide", `{"hidden":[64,4097]}`, "hidden[1]", "must be from 1 to 4096, got 4097"},
		{"hidden zero width", `{"hidden":[0]}`, "hidden[0]", "must be from 1 to 4096, got 0"},
		{"hidden string item", `{"hidden":[64,"64"]}`, "hidden[1]", `got a string "64"`},
		{"hidden null item", `{"hidden":[null]}`, "hidden[0]", "got null"},
		{"hidden not a list", `{"hidden":64}`, "hidden", "must be a list of 1 to 8 layer widths"},
		{"hidden object", `{"hidden":{"0":64}}`, "hidden", "got an object"},
		{"lr over", `{"lr":1.5}`, "lr", "must be in (0, 1]"},
		{"lr negative", `{"lr":-0.001}`, "lr", "must be in (0, 1]"},
		{"lr just above 1, rounds to 1", `{"lr":1.0000000000000001}`, "lr", "got 1.0000000000000001"},
		{"lr just below 0, rounds to -0", `{"lr":-1e-400}`, "lr", "must be in (0, 1]"},
		{"lr underflows to 0", `{"lr":1e-400}`, "lr", "at least 5e-324"},
		{"lr huge negative exponent", `{"lr":1e-99999999999999999999999}`, "lr", "at least"},
		{"lr huge exponent", `{"lr":1e99999999999999999999999}`, "lr", "must be a number"},
		{"lr string", `{"lr":"0.001"}`, "lr", "must be a number in (0, 1]"},
		{"seed negative", `{"seed":-1}`, "seed", "must be an integer from 0 to 18446744073709551615"},
		{"device unknown", `{"device":"tpu"}`, "device", `must be one of "auto", "cpu", "gpu"`},
		{"device case", `{"device":"GPU"}`, "device", `got "GPU"`},
		{"dataset path", `{"dataset":"../../etc/passwd"}`, "dataset", "not a path"},
		{"dataset absolute path", `{"dataset":"/data/bike.csv"}`, "dataset", "matching ^[a-z0-9_-]{1,64}$"},
		{"dataset upper case", `{"dataset":"Bike"}`, "dataset", "embedded dataset"},
		{"dataset too long", `{"dataset":"` + strings.Repeat("a", 65) + `"}`, "dataset", "embedded dataset"},
		{"dataset a number", `{"dataset":5}`, "dataset", "got a number 5"},
		{"patience over", `{"patience":1001}`, "patience", "must be from 0 (never stop early) to 1000, got 1001"},
		{"patience negative", `{"patience":-1}`, "patience", "must be from 0"},
		{"horizons over", `{"horizons":366}`, "horizons", "must be from 1 to 365"},
		{"on_oom unknown", `{"on_oom":"retry"}`, "on_oom", `must be one of "fail", "halve"`},
		{"long value described by kind", `{"dataset":"` + strings.Repeat("x", 100) + `1"}`, "dataset", "embedded dataset"},
		{"long wrong type", `{"folds":"` + strings.Repeat("x", 100) + `"}`, "folds", "got a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRunRequest(strings.NewReader(tt.body), 0)
			if err == nil {
				t.Fatalf("DecodeRunRequest(%s) = nil error", tt.body)
			}
			if !errors.Is(err, ErrInvalidRunRequest) {
				t.Errorf("%v does not match ErrInvalidRunRequest", err)
			}
			if errors.Is(err, ErrRunRequestTooLarge) {
				t.Errorf("%v matches ErrRunRequestTooLarge", err)
			}
			re, ok := errors.AsType[*RequestError](err)
			if !ok {
				t.Fatalf("%T is not a *RequestError", err)
			}
			if re.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", re.Field, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if prefix := "invalid run request: " + tt.field; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with the field", err)
			}
		})
	}
}

func TestDecodeRunRequestSize(t *testing.T) {
	body := `{"dataset":"bike","epochs":10}` // 30 bytes
	if _, err := DecodeRunRequest(strings.NewReader(body), int64(len(body))); err != nil {
		t.Errorf("a body of exactly the limit: %v", err)
	}
	_, err := DecodeRunRequest(strings.NewReader(body), int64(len(body)-1))
	if !errors.Is(err, ErrRunRequestTooLarge) || !errors.Is(err, ErrInvalidRunRequest) {
		t.Fatalf("over the limit: %v, want ErrRunRequestTooLarge", err)
	}
	if want := "invalid run request: body exceeds 29 bytes"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// The default limit applies when none is given, and reading stops there.
	huge := &countingReader{r: io.MultiReader(strings.NewReader(`{"dataset":"`), neverEnding('a'))}
	if _, err := DecodeRunRequest(huge, 0); !errors.Is(err, ErrRunRequestTooLarge) {
		t.Fatalf("endless body: %v", err)
	}
	if huge.n > DefaultMaxRunRequestBytes+1 {
		t.Errorf("read %d bytes, more than the limit + 1", huge.n)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestDecimalVsUnit(t *testing.T) {
	tests := []struct {
		lit                 string
		neg, zero, aboveOne bool
	}{
		{"0", false, true, false}, {"-0", true, true, false}, {"0.000e-7", false, true, false},
		{"1", false, false, false}, {"1.0", false, false, false}, {"10e-1", false, false, false},
		{"0.001e3", false, false, false}, {"1.0000000000000001", false, false, true}, {"1.5", false, false, true},
		{"2", false, false, true}, {"0.999999999999999999", false, false, false}, {"10", false, false, true},
		{"-1e-400", true, false, false}, {"1E+0", false, false, false}, {"0.01e2", false, false, false},
		{"0.011e2", false, false, true}, {"1e99999999999999999999", false, false, true}, {"1e-99999999999999999999", false, false, false},
	}
	for _, tt := range tests {
		neg, zero, above := decimalVsUnit(tt.lit)
		if neg != tt.neg || zero != tt.zero || above != tt.aboveOne {
			t.Errorf("decimalVsUnit(%s) = %v, %v, %v; want %v, %v, %v", tt.lit, neg, zero, above, tt.neg, tt.zero, tt.aboveOne)
		}
	}
}

// An error reading the body is the reader's, not a bad request.
func TestDecodeRunRequestReadError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := DecodeRunRequest(iotest.ErrReader(boom), 0)
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalidRunRequest) {
		t.Fatalf("got %v, want the read error only", err)
	}
}

func TestRunRequestValidate(t *testing.T) {
	if err := (RunRequest{}).Validate(); err != nil {
		t.Errorf("zero request: %v", err)
	}
	bad := []RunRequest{
		{Hidden: []int{-3}},
		{Device: "Auto"},
		{OnOOM: "retry"},
		{Dataset: "bike.csv"},
		{Seed: 1, Folds: 100},
	}
	for _, r := range bad {
		if err := r.Validate(); !errors.Is(err, ErrInvalidRunRequest) {
			t.Errorf("%+v: %v, want ErrInvalidRunRequest", r, err)
		}
	}
}

// FuzzDecodeRunRequest checks that DecodeRunRequest never panics, that what
// it accepts is valid (Validate, and run_request.json for both the body it
// read and the request re-encoded), that re-encoding round-trips, and that
// every rejection is a *RequestError.
func FuzzDecodeRunRequest(f *testing.F) {
	for _, s := range []string{
		`{}`, ``, `null`, `[]`, `{"folds":3}`, `{"folds":3}{}`, `{"folds":"3"}`, `{"folds":3,"folds":3}`,
		`{"dataset":"bike","folds":5,"epochs":25,"batch_size":256,"hidden":[64,64],"lr":0.001,"seed":7,"device":"auto","patience":5,"horizons":30}`,
		`{"hidden":[1,2,3,4,5,6,7,8,9]}`, `{"hidden":[null]}`, `{"lr":1e-400}`, `{"lr":1.0000000000000001}`, `{"seed":-0}`, `{"folds":-0}`,
		`{"dataset":"a\u00e9"}`, `{"fold\u0073":1}`, `{"patience":0}`, `{"device":"gpu"}`, "{\"dataset\":\"\xff\"}", `{"x":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRunRequest(bytes.NewReader(body), 4096)
		if err != nil {
			if _, ok := errors.AsType[*RequestError](err); !ok || !errors.Is(err, ErrInvalidRunRequest) {
				t.Fatalf("error %v (%T) is not a *RequestError matching ErrInvalidRunRequest", err, err)
			}
			return
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("accepted %q but Validate says %v", body, err)
		}
		if err := ValidateRunRequest(body); err != nil {
			t.Fatalf("accepted %q, which run_request.json rejects: %v", body, err)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateRunRequest(again); err != nil {
			t.Fatalf("accepted %q, re-encoded as %s, which run_request.json rejects: %v", body, again, err)
		}
		back, err := DecodeRunRequest(bytes.NewReader(again), 0)
		if err != nil {
			t.Fatalf("re-encoded %s is rejected: %v", again, err)
		}
		if len(req.Hidden) == 0 {
			req.Hidden = nil // [] and absent both mean the default, and re-encode as absent
		}
		if !reflect.DeepEqual(back, req) {
			t.Fatalf("round trip of %q: %+v, then %+v", body, req, back)
		}
	})
}
