package schema

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Devices a RunRequest may ask for.
const (
	DeviceAuto = "auto" // the GPU worker when it starts, else the CPU worker
	DeviceCPU  = "cpu"
	DeviceGPU  = "gpu" // never falls back: no GPU is a training_error
)

// Limits of a RunRequest. run_request.json states the same numbers; a test
// keeps the two in step.
const (
	MaxFolds        = 20
	MaxEpochs       = 1000
	MaxBatchSize    = 65536
	MaxHiddenLayers = 8
	MaxHiddenWidth  = 4096
	MaxPatience     = 1000
	MaxHorizons     = 365
	MaxTrials       = 50 // trials of a tune

	// DatasetNamePattern is what a dataset name looks like: a name of an
	// embedded dataset, never a path.
	DatasetNamePattern = `^[a-z0-9_-]{1,64}$`

	// DefaultMaxRunRequestBytes bounds a request body when DecodeRunRequest
	// is given no positive limit.
	DefaultMaxRunRequestBytes = 16 << 10
)

var datasetName = regexp.MustCompile(DatasetNamePattern)

// RunRequest is a training job a client asks for: the JSON body of
// POST /api/runs, and the job spec a client may ask the server to train.
//
// The zero value of every field, or the field left out of the JSON, means
// "the server's default" (the engine's documented defaults, and the
// server's default dataset), so {} is a valid request. The one exception is
// Patience: absent (nil) is the default, while 0 turns early stopping off.
type RunRequest struct {
	Dataset   string  `json:"dataset,omitempty"`    // an embedded dataset's name, e.g. "bike"; never a path
	Folds     int     `json:"folds,omitempty"`      // walk-forward folds, 1..MaxFolds
	Epochs    int     `json:"epochs,omitempty"`     // maximum epochs per fold, 1..MaxEpochs
	BatchSize int     `json:"batch_size,omitempty"` // 1..MaxBatchSize
	Hidden    []int   `json:"hidden,omitempty"`     // hidden layer widths, 1..MaxHiddenLayers layers of 1..MaxHiddenWidth
	LR        float64 `json:"lr,omitempty"`         // Adam learning rate, in (0, 1]
	Seed      uint64  `json:"seed,omitempty"`       // same seed, same data: same reports
	Device    string  `json:"device,omitempty"`     // DeviceAuto, DeviceCPU or DeviceGPU
	Patience  *int    `json:"patience,omitempty"`   // epochs without improvement before stopping, 0 (never stop early)..MaxPatience
	Horizons  int     `json:"horizons,omitempty"`   // targets per origin, 1..MaxHorizons; 0 chooses by series kind
	OnOOM     string  `json:"on_oom,omitempty"`     // OnOOMFail or OnOOMHalve
	Kind      string  `json:"kind,omitempty"`       // RunKindTrain ("" too) or RunKindTune
	// Trials is the size of a tune (kind "tune"), 1..MaxTrials; 0 or absent:
	// the engine's default (8). It is an error with any other kind.
	Trials int `json:"trials,omitempty"`
}

// Kinds of run (RunRequest.Kind).
const (
	RunKindTrain = "train" // one walk-forward cross-validation with the request's parameters
	// RunKindTune is a hyperparameter study: Trials cross-validations, each
	// with lr, hidden and batch_size drawn from the documented search space
	// (a tune request that sets any of the three is refused), reported by
	// hpo_trial messages.
	RunKindTune = "tune"
)

// What a run does when its device runs out of memory (RunRequest.OnOOM).
const (
	OnOOMFail  = "fail"  // end in training_error
	OnOOMHalve = "halve" // retry the fold with half the batch, up to 3 times, with a notification each time
)

// ErrInvalidRunRequest is matched (errors.Is) by every error DecodeRunRequest
// and RunRequest.Validate return about the request itself: the server
// answers it with HTTP 400 and the error's text. Errors reading the body are
// not wrapped in it.
var ErrInvalidRunRequest = errors.New("invalid run request")

// ErrRunRequestTooLarge is matched by the error for a body over the limit
// (HTTP 413, or 400); it also matches ErrInvalidRunRequest.
var ErrRunRequestTooLarge = fmt.Errorf("%w: body too large", ErrInvalidRunRequest)

// RequestError says what is wrong with a run request: which field (empty
// when the problem is the body as a whole) and what is allowed. Its text is
// written for the client, e.g.
//
//	invalid run request: folds: must be from 1 to 20 (0 or absent: server default), got 50
type RequestError struct {
	Field string // JSON name, with an index for list items: "hidden[2]"; "" for the whole body
	Msg   string // what is allowed and what was given
	Err   error  // ErrInvalidRunRequest or ErrRunRequestTooLarge
}

func (e *RequestError) Error() string {
	if e.Field == "" {
		return "invalid run request: " + e.Msg
	}
	return "invalid run request: " + e.Field + ": " + e.Msg
}

// Unwrap returns the sentinel the error matches.
func (e *RequestError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) error {
	return &RequestError{Field: field, Msg: fmt.Sprintf(format, args...), Err: ErrInvalidRunRequest}
}

// runField decodes one JSON member into a RunRequest; allowed describes the
// values it takes, for error messages. decode returns a *RequestError when
// it can say more than "must be <allowed>".
type runField struct {
	allowed string
	decode  func(req *RunRequest, raw json.RawMessage) error
}

var runFields = map[string]runField{
	"dataset": {"a dataset name matching " + DatasetNamePattern + " (empty or absent: server default)",
		func(req *RunRequest, raw json.RawMessage) error { return json.Unmarshal(raw, &req.Dataset) }},
	"folds": {intRange(1, MaxFolds, "0 or absent: server default"),
		func(req *RunRequest, raw json.RawMessage) error { return json.Unmarshal(raw, &req.Folds) }},
	"epochs": {intRange(1, MaxEpochs, "0 or absent: server default"),
		func(req *RunRequest, raw json.RawMessage) error { return json.Unmarshal(raw, &req.Epochs) }},
	"batch_size": {intRange(1, MaxBatchSize, "0 or absent: server default"),
		func(req *RunRequest, raw json.RawMessage) error { return json.Unmarshal(raw, &req.BatchSize) }},
	"hidden": {fmt.Sprintf("a list of 1 to %d layer widths, each an integer from 1 to %d (empty or absent: server default)", MaxHiddenLayers, MaxHiddenWidth),
		decodeHidden},
	"lr": {"a number in (0, 1] (0 or absent: server default)", decodeLR},
	"seed": {"an integer from 0 to 18446744073709551615 (0 or absent: server default)",
		func(req *RunRequest, raw json.RawMessage) error { return json.Unmarshal(raw, &req.Seed) }},
	"device": {`one of "auto", "cpu", "gpu" (empty or absent: server default)`,
		func(req *RunRequest, raw json.RawMessage) error { return json.Unmarshal(raw, &req.Device) }},
	"patience": {intRange(0, MaxPatience, "0: never stop early; absent: server default"),
		func(req *RunRequest, raw json.RawMessage) error {
			var p int
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
			req.Patience = &p
			return nil
		}},
	"horizons": {intRange(1, MaxHorizons, "0 or absent: chosen by series kind"),
		func(req *RunRequest, raw json.RawMessage) error { return json.Unmarshal(raw, &req.Horizons) }},
	"on_oom": {`one of "fail", "halve" (empty or absent: server default)`,
		func(req *RunRequest, raw json.RawMessage) error { return json.Unmarshal(raw, &req.OnOOM) }},
	"kind": {`one of "train", "tune" (empty or absent: train)`,
		func(req *RunRequest, raw json.RawMessage) error { return json.Unmarshal(raw, &req.Kind) }},
	"trials": {intRange(1, MaxTrials, `0 or absent: 8; only with "kind":"tune"`),
		func(req *RunRequest, raw json.RawMessage) error { return json.Unmarshal(raw, &req.Trials) }},
}

func intRange(lo, hi int, zero string) string {
	return fmt.Sprintf("an integer from %d to %d (%s)", lo, hi, zero)
}

func decodeHidden(req *RunRequest, raw json.RawMessage) error {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return err
	}
	req.Hidden = make([]int, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &req.Hidden[i]); err != nil || isNull(it) {
			return invalid(fmt.Sprintf("hidden[%d]", i), "must be an integer from 1 to %d, got %s", MaxHiddenWidth, describe(it))
		}
	}
	return nil
}

// decodeLR reads the learning rate and checks its range on the decimal the
// client wrote, not on its rounding to float64: 1.0000000000000001 rounds to
// 1 and -1e-400 to -0, and both are out of range (as run_request.json says),
// while 1e-400 rounds to 0, which would silently mean "default".
func decodeLR(req *RunRequest, raw json.RawMessage) error {
	if err := json.Unmarshal(raw, &req.LR); err != nil {
		return err
	}
	lit := string(bytes.TrimSpace(raw))
	neg, zero, aboveOne := decimalVsUnit(lit)
	switch {
	case zero:
		req.LR = 0 // -0 too
	case neg || aboveOne:
		return invalid("lr", "must be in (0, 1] (0 or absent: server default), got %s", lit)
	case req.LR == 0:
		return invalid("lr", "must be in (0, 1] and at least %g, got %s", math.SmallestNonzeroFloat64, lit)
	}
	return nil
}

// decimalVsUnit compares a JSON number literal with 0 and 1 exactly, without
// computing its value (an exponent such as 1e-99999999 costs nothing).
func decimalVsUnit(lit string) (neg, zero, aboveOne bool) {
	neg = strings.HasPrefix(lit, "-")
	lit = strings.TrimPrefix(lit, "-")
	mant, expText, _ := strings.Cut(strings.ToLower(lit), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	sig := strings.TrimLeft(digits, "0")
	if sig == "" {
		return neg, true, false
	}
	exp := 0
	if expText != "" {
		e, err := strconv.Atoi(expText)
		switch {
		case err == nil && e > -1<<30 && e < 1<<30:
			exp = e
		case strings.HasPrefix(expText, "-"):
			exp = -1 << 30 // far below any float64, like the value
		default:
			exp = 1 << 30
		}
	}
	// The value is 0.sig × 10^k.
	k := len(intPart) - (len(digits) - len(sig)) + exp
	sig = strings.TrimRight(sig, "0")
	return neg, false, k > 1 || k == 1 && sig != "1"
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// DecodeRunRequest reads one RunRequest from r, reading at most maxBytes
// (DefaultMaxRunRequestBytes when maxBytes <= 0). It is strict, because the
// body comes from a client: the body must be exactly one JSON object, and
// unknown, duplicated or differently cased fields, null values, wrong types,
// trailing data, an oversized body and out-of-range values are errors.
// Every such error is a *RequestError that names the field and what it
// allows, and matches ErrInvalidRunRequest; an error reading r is returned
// wrapped as it is.
//
// An accepted request satisfies Validate, and its JSON (and the body it was
// read from) is valid against run_request.json.
func DecodeRunRequest(r io.Reader, maxBytes int64) (RunRequest, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRunRequestBytes
	}
	body, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return RunRequest{}, fmt.Errorf("read run request: %w", err)
	}
	if int64(len(body)) > maxBytes {
		return RunRequest{}, &RequestError{Msg: fmt.Sprintf("body exceeds %d bytes", maxBytes), Err: ErrRunRequestTooLarge}
	}
	var req RunRequest
	if err := decodeRunRequest(body, &req); err != nil {
		return RunRequest{}, err
	}
	if err := req.Validate(); err != nil {
		return RunRequest{}, err
	}
	return req, nil
}

func decodeRunRequest(body []byte, req *RunRequest) error {
	const notObject = `body must be one JSON object, such as {"dataset":"bike","epochs":10}`
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("", "body is empty: "+notObject+"; {} asks for the server's defaults")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return invalid("", notObject)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		name, isKey := tok.(string)
		if err != nil || !isKey {
			return invalid("", "malformed JSON: %v", err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return invalid("", "malformed JSON after %q: %v", name, err)
		}
		f, ok := runFields[name]
		if !ok {
			const known = "known fields are dataset, folds, epochs, batch_size, hidden, lr, seed, device, patience, horizons, on_oom, kind, trials"
			if _, ok := runFields[strings.ToLower(name)]; ok {
				return invalid(name, "unknown field; names are case-sensitive: did you mean %q?", strings.ToLower(name))
			}
			return invalid(fieldName(name), "unknown field; "+known)
		}
		if seen[name] {
			return invalid(name, "given twice")
		}
		seen[name] = true
		if isNull(raw) {
			return invalid(name, "must be %s, got null", f.allowed)
		}
		if err := f.decode(req, raw); err != nil {
			if _, ok := errors.AsType[*RequestError](err); ok {
				return err // already says which field and why
			}
			return invalid(name, "must be %s, got %s", f.allowed, describe(raw))
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return invalid("", "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("", "unexpected data after the JSON object; send exactly one object")
	}
	return nil
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// fieldName shows a client's unknown key in an error: as is when plain,
// else quoted and cut to 64 bytes, so that the error stays one short line.
func fieldName(name string) string {
	if plainName.MatchString(name) {
		return name
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return strconv.QuoteToASCII(name)
}

// describe names what a client sent, briefly: the value when short, else
// its JSON kind.
func describe(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	kind := "a number"
	switch raw[0] {
	case '"':
		kind = "a string"
	case '{':
		kind = "an object"
	case '[':
		kind = "a list"
	case 't', 'f':
		kind = "a boolean"
	case 'n':
		return "null"
	}
	if len(raw) <= 40 {
		return kind + " " + string(raw)
	}
	return kind
}

// Validate says whether every field is in range, zero meaning the server's
// default. Its errors are *RequestError, as DecodeRunRequest's.
func (r RunRequest) Validate() error {
	if r.Dataset != "" && !datasetName.MatchString(r.Dataset) {
		return invalid("dataset", "must be the name of an embedded dataset matching %s (such as \"bike\"), not a path; got %q", DatasetNamePattern, r.Dataset)
	}
	if err := intIn("folds", r.Folds, 1, MaxFolds); err != nil {
		return err
	}
	if err := intIn("epochs", r.Epochs, 1, MaxEpochs); err != nil {
		return err
	}
	if err := intIn("batch_size", r.BatchSize, 1, MaxBatchSize); err != nil {
		return err
	}
	if len(r.Hidden) > MaxHiddenLayers {
		return invalid("hidden", "must have 1 to %d layers, got %d", MaxHiddenLayers, len(r.Hidden))
	}
	for i, w := range r.Hidden {
		if w < 1 || w > MaxHiddenWidth {
			return invalid(fmt.Sprintf("hidden[%d]", i), "must be from 1 to %d, got %d", MaxHiddenWidth, w)
		}
	}
	if !(r.LR >= 0 && r.LR <= 1) { // also rejects NaN
		return invalid("lr", "must be in (0, 1] (0 or absent: server default), got %v", r.LR)
	}
	switch r.Device {
	case "", DeviceAuto, DeviceCPU, DeviceGPU:
	default:
		return invalid("device", `must be one of "auto", "cpu", "gpu" (empty or absent: server default), got %q`, r.Device)
	}
	switch r.OnOOM {
	case "", OnOOMFail, OnOOMHalve:
	default:
		return invalid("on_oom", `must be one of "fail", "halve" (empty or absent: server default), got %q`, r.OnOOM)
	}
	if r.Patience != nil && (*r.Patience < 0 || *r.Patience > MaxPatience) {
		return invalid("patience", "must be from 0 (never stop early) to %d, got %d", MaxPatience, *r.Patience)
	}
	switch r.Kind {
	case "", RunKindTrain:
		if r.Trials != 0 {
			return invalid("trials", `applies only to "kind":"tune", got %d with kind %q`, r.Trials, cmp.Or(r.Kind, RunKindTrain))
		}
	case RunKindTune:
		// The study draws these; a value here would be silently lost.
		switch {
		case r.LR != 0:
			return invalid("lr", `is searched by "kind":"tune"; leave it out`)
		case len(r.Hidden) > 0:
			return invalid("hidden", `is searched by "kind":"tune"; leave it out`)
		case r.BatchSize != 0:
			return invalid("batch_size", `is searched by "kind":"tune"; leave it out`)
		}
	default:
		return invalid("kind", `must be one of "train", "tune" (empty or absent: train), got %q`, r.Kind)
	}
	if err := intIn("trials", r.Trials, 1, MaxTrials); err != nil {
		return err
	}
	return intIn("horizons", r.Horizons, 1, MaxHorizons)
}

// intIn checks a field where 0 means the default and lo..hi are allowed.
func intIn(field string, v, lo, hi int) error {
	if v != 0 && (v < lo || v > hi) {
		return invalid(field, "must be from %d to %d (0 or absent: server default), got %d", lo, hi, v)
	}
	return nil
}
