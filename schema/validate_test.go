package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// hash64 is a content hash as the server sends it.
var hash64 = strings.Repeat("0123456789abcdef", 4)

// messages returns a realistic value of every message type of both
// dialects, with the variants that change the JSON (nulls, absent optional
// fields), keyed by a name for the subtest.
func messages() map[string]any {
	nan := Float(math.NaN())
	m := Metrics{
		TrainLoss: 0.1234, TrainNLL: 0.0987, TrainBCE: 0.0234, TrainBrier: 0.1345,
		ValLoss: 0.2345, ValNLL: 0.1987, ValBCE: 0.0456, ValBrier: 0.1567, ValAUC: 0.6789,
		DirAcc: 0.5678, ECE: 0.0456, MZIntercept: 0.0012, MZSlope: 0.9987, MZFp: 0.3456,
		PITKSp: 0.4567, ConformalCoverage: 0.9012, ConformalWidth: 0.1234,
	}
	undefined := m
	undefined.ValAUC, undefined.MZFp, undefined.MZSlope = nan, Float(math.Inf(1)), Float(math.Inf(-1))
	item := ForecastItem{Date: "2026-02-01", PredictedAffluence: "45", ConfLow: "40", ConfHigh: "50",
		ConfidenceScore: "High", PUp: 0.53, Mu: 0.012, Sigma: 0.2}
	decimal := ForecastItem{Date: "2026-02-02", PredictedAffluence: "12.75", ConfLow: "10.5", ConfHigh: "15.125",
		ConfidenceScore: "Low", PUp: nan, Mu: -0.004, Sigma: 0.31}
	return map[string]any{
		"dataset_ready":         DatasetReady{Type: TypeDatasetReady, Size: 684, MinSamples: 300, Dataset: "bike", Rows: 731},
		"dataset_ready/minimal": DatasetReady{Type: TypeDatasetReady, Size: 10000, MinSamples: 2048},
		"training_start":        TrainingStart{Type: TypeTrainingStart, UseCV: true, TotalFolds: 5, TotalEpochs: 25, Device: "cpu", FallbackReason: "no CUDA worker installed"},
		"training_start/no_cv":  TrainingStart{Type: TypeTrainingStart, UseCV: false, TotalFolds: 1, TotalEpochs: 60},
		"epoch_metrics":         EpochMetrics{Type: TypeEpochMetrics, FoldID: 0, Epoch: 10, Metrics: m, ElapsedSeconds: 123.45},
		"epoch_metrics/nan":     EpochMetrics{Type: TypeEpochMetrics, FoldID: 4, Epoch: 0, Metrics: undefined, ElapsedSeconds: 0.5},
		"fold_complete": FoldComplete{Type: TypeFoldComplete, FoldID: 2, PredictionsPath: "reports/predictions/predictions_fold_2_20260101_120000.csv",
			CalibrationMethod: "temp_isotonic", CalibrationWarning: ptr("only 41 calibration rows: isotonic may overfit"), CoverageWarning: ptr("coverage 0.78 is outside [0.84, 0.96]")},
		"fold_complete/null_warnings": FoldComplete{Type: TypeFoldComplete, FoldID: 0, PredictionsPath: "reports/predictions/p.csv", CalibrationMethod: "raw"},
		"training_complete":           TrainingComplete{Type: TypeTrainingComplete, FoldsCompleted: 5, SummaryPath: "reports/summary.json"},
		"training_error":              TrainingError{Type: TypeTrainingError, Error: "CUDA out of memory: requested 268435456 bytes, 1048576 free of 8589934592"},
		"prediction_delta": PredictionDelta{Type: TypePredictionDelta, FoldID: 1, Epoch: 3, Part: 2, Parts: 2, Predictions: []Prediction{
			{Timestamp: "2012-06-01T00:00:00Z", Mu: 0.0123, Sigma: 0.0234, PUpRaw: 0.5234, PUpCal: 0.5123, ConformalP: 0.8765, PITZ: 0.1234},
			{Timestamp: "2012-06-02T00:00:00Z", Mu: -0.01, Sigma: 0.02, PUpRaw: 0.47, PUpCal: nan, ConformalP: 1, PITZ: -2.5},
		}},
		"prediction_delta/empty": PredictionDelta{Type: TypePredictionDelta, FoldID: 0, Epoch: 0, Predictions: []Prediction{}},
		"notification": Notification{Type: TypeNotification, Level: LevelInfo, Kind: KindBestAUC,
			Message: "Fold 2 reached its best validation AUC so far: 0.6789.", FoldID: ptr(2), Epoch: ptr(7), Value: ptr(Float(0.6789))},
		"notification/run": Notification{Type: TypeNotification, Level: LevelInfo, Kind: KindProgress50, Message: "Training is 50% complete."},
		"notification/nan": Notification{Type: TypeNotification, Level: LevelWarning, Kind: KindCoverageWarning,
			Message: "Fold 0: conformal coverage is undefined.", FoldID: ptr(0), Value: ptr(nan)},
		"batch_progress": BatchProgress{Type: TypeBatchProgress, FoldID: 3, Epoch: 12, Batch: 7, TotalBatches: 20},
		"pong":           Pong{Type: TypePong},
		"hpo_trial": HPOTrial{Type: TypeHPOTrial, Trial: 3, TotalTrials: 8, State: TrialComplete,
			Params: HPOParams{LR: 0.00123, Hidden: []int{64, 64}, BatchSize: 128}, Value: 1.234, BestTrial: ptr(1), BestValue: 1.1, ElapsedSeconds: 42.5},
		"hpo_trial/failed_first": HPOTrial{Type: TypeHPOTrial, Trial: 0, TotalTrials: 8, State: TrialFailed, Error: "too little data",
			Params: HPOParams{LR: 0.01, Hidden: []int{32, 32}, BatchSize: 256}, Value: nan, BestValue: nan, ElapsedSeconds: 0.25},
		"training_start/data": TrainingStart{Type: TypeTrainingStart, UseCV: true, TotalFolds: 5, TotalEpochs: 25, Device: "cpu",
			Dataset: "bike.csv", DatasetHash: hash64, DatasetRows: 731},
		"chart_update": ChartUpdate{Type: TypeChartUpdate, Dataset: "sp500_live", Target: "close", OHLCV: true,
			Columns: []string{"date", "open", "high", "low", "close", "volume"}, Rows: []ChartRow{{Date: "2020-04-20", Values: []ChartValue{
				{"open", NumberValue(2845.62)}, {"high", NumberValue(2868.98)}, {"low", NumberValue(2820.43)}, {"close", NumberValue(2823.16)}, {"volume", NumberValue(5.2e9)}}}},
			Part: 1, Parts: 1, Appended: 1, TotalRows: 5106, Last: "2020-04-20", Hash: hash64, PreviousHash: strings.Repeat("1", 64)},
		"chart_update/text_column": ChartUpdate{Type: TypeChartUpdate, Dataset: "visits", Target: "value",
			Columns: []string{"date", "value", "note"}, Rows: []ChartRow{{Date: "2024-01-02", Values: []ChartValue{{"value", NumberValue(12)}, {"note", StringValue("snow")}}}},
			Part: 2, Parts: 2, Appended: 2001, TotalRows: 2400, Last: "2024-01-02", Hash: hash64, PreviousHash: hash64},
		"training_start/tune": TrainingStart{Type: TypeTrainingStart, UseCV: true, TotalFolds: 3, TotalEpochs: 10, Device: "cpu", TotalTrials: 8},

		"predict/message":       PredictMessage{Status: StatusMessage, Message: "Chargement des données..."},
		"predict/steps":         PredictSteps{Status: StatusSteps, Message: "Prédiction Kairoscope du futur en cours...", StepName: "Etape 5 sur 25", Step: 5, TotalStep: 25},
		"predict/output":        PredictOutput{Status: StatusOutput, Payload: ForecastPayload{item, decimal}},
		"predict/output/data":   PredictOutput{Status: StatusOutput, Payload: ForecastPayload{item}, Dataset: "mine.csv", DatasetHash: hash64, DatasetRows: 400},
		"predict/output/empty":  PredictOutput{Status: StatusOutput, Payload: ForecastPayload{}},
		"predict/error":         PredictError{Status: StatusError, Message: "dataset \"bike\" has 12 rows; at least 300 are needed"},
		"predict/message/empty": PredictMessage{Status: StatusMessage},
	}
}

// Every Go message type, marshalled from a realistic value, is valid against
// its schema, with and without the server's run_id and seq.
func TestMarshalledMessagesValidate(t *testing.T) {
	for name, msg := range messages() {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(b); err != nil {
				t.Fatalf("%s\n%v", b, err)
			}
			if strings.HasPrefix(name, "predict/") {
				return
			}
			stamped := stamp(b, "run-20260101-120000", 42)
			if err := Validate(stamped); err != nil {
				t.Fatalf("%s\n%v", stamped, err)
			}
		})
	}
}

// stamp adds run_id and seq to a /ws message as the hub does: as the
// object's last members.
func stamp(msg []byte, runID string, seq int) []byte {
	out := bytes.TrimRight(slices.Clone(msg), " \n")
	out = out[:len(out)-1]
	if len(out) > 1 {
		out = append(out, ',')
	}
	return fmt.Appendf(out, `"run_id":%q,"seq":%d}`, runID, seq)
}

// The seeds' own examples validate, each against the schema its file is
// named after, and decode into the Go type without unknown fields.
func TestSeedExamplesValidate(t *testing.T) {
	types := map[string]any{
		"ws.dataset_ready.json": &DatasetReady{}, "ws.training_start.json": &TrainingStart{},
		"ws.epoch_metrics.json": &EpochMetrics{}, "ws.fold_complete.json": &FoldComplete{},
		"ws.training_complete.json": &TrainingComplete{}, "ws.training_error.json": &TrainingError{},
		"ws.prediction_delta.json": &PredictionDelta{},
		"predict.message.json":     &PredictMessage{}, "predict.steps.json": &PredictSteps{},
		"predict.output.json": &PredictOutput{}, "predict.error.json": &PredictError{},
	}
	paths, err := filepath.Glob("testdata/seed_examples/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(types) {
		t.Fatalf("%d seed examples, want %d (7 in the /ws seed, 4 in the /ws/predict seed)", len(paths), len(types))
	}
	for _, p := range paths {
		name := filepath.Base(p)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(b); err != nil {
				t.Fatal(err)
			}
			if got := schemaFor(t, b); got != name {
				t.Errorf("Validate picked %s", got)
			}
			v, ok := types[name]
			if !ok {
				t.Fatalf("no Go type listed for %s", name)
			}
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("decode into %T: %v", v, err)
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(again); err != nil {
				t.Fatalf("%T re-encoded as %s: %v", v, again, err)
			}
		})
	}
}

// schemaFor says which file Validate picks for msg.
func schemaFor(t *testing.T, msg []byte) string {
	t.Helper()
	var head struct {
		Type   *string `json:"type"`
		Status *string `json:"status"`
	}
	if err := json.Unmarshal(msg, &head); err != nil {
		t.Fatal(err)
	}
	if head.Type != nil {
		return wsSchemas[*head.Type]
	}
	return predictSchemas[*head.Status]
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name, msg string
		unknown   bool   // wants ErrUnknownMessage
		want      string // in the error: where and why it failed
	}{
		{"not JSON", `{"type":"pong"`, false, "not JSON"},
		{"trailing data", `{"type":"pong"} {}`, false, "not JSON"},
		{"not an object", `["pong"]`, false, "not a JSON object"},
		{"null", `null`, false, "not a JSON object"},
		{"bare ping", `ping`, false, "not JSON"},
		{"unknown type", `{"type":"candle"}`, true, `"candle"`},
		{"chart_update no rows", `{"type":"chart_update","dataset":"d","target":"value","ohlcv":false,"columns":["date","value"],"rows":[],"part":1,"parts":1,"appended":1,"total_rows":3,"last":"2024-01-03","hash":"` + strings.Repeat("a", 64) + `","previous_hash":"` + strings.Repeat("b", 64) + `"}`, false, "'/rows': minItems"},
		{"chart_update row value an array", `{"type":"chart_update","dataset":"d","target":"value","ohlcv":false,"columns":["date","value"],"rows":[{"date":"2024-01-03","value":[1]}],"part":1,"parts":1,"appended":1,"total_rows":3,"last":"2024-01-03","hash":"` + strings.Repeat("a", 64) + `","previous_hash":"` + strings.Repeat("b", 64) + `"}`, false, "'/rows/0/value'"},
		{"chart_update bad hash", `{"type":"chart_update","dataset":"d","target":"value","ohlcv":false,"columns":["date","value"],"rows":[{"date":"2024-01-03","value":1}],"part":1,"parts":1,"appended":1,"total_rows":3,"last":"2024-01-03","hash":"XYZ","previous_hash":"` + strings.Repeat("b", 64) + `"}`, false, "'/hash'"},
		{"type not a string", `{"type":5}`, true, "not a string"},
		{"type null", `{"type":null,"status":"message","message":"x"}`, true, "not a string"},
		{"unknown status", `{"status":"done","message":"x"}`, true, `"done"`},
		{"neither type nor status", `{"message":"x"}`, true, "no \"type\""},
		{"missing required", `{"type":"dataset_ready","size":10000}`, false, "missing property 'min_samples'"},
		{"string where number", `{"type":"dataset_ready","size":"10000","min_samples":2048}`, false, "'/size': got string, want integer"},
		{"float where integer", `{"type":"dataset_ready","size":10000.5,"min_samples":2048}`, false, "'/size': got number, want integer"},
		{"negative count", `{"type":"dataset_ready","size":-1,"min_samples":2048}`, false, "'/size': minimum"},
		{"bool as string", `{"type":"training_start","use_cv":"true","total_folds":5,"total_epochs":25}`, false, "'/use_cv': got string, want boolean"},
		{"metric as string", strings.Replace(mustMarshal(t, messages()["epoch_metrics"]), `"val_auc":0.6789`, `"val_auc":"0.6789"`, 1), false, "'/val_auc': got string, want null or number"},
		{"metric missing", strings.Replace(mustMarshal(t, messages()["epoch_metrics"]), `"ECE":0.0456,`, ``, 1), false, "missing property 'ECE'"},
		{"warning absent", `{"type":"fold_complete","fold_id":0,"predictions_path":"p.csv","calibration_method":"raw","calibration_warning":null}`, false, "missing property 'coverage_warning'"},
		{"warning a number", `{"type":"fold_complete","fold_id":0,"predictions_path":"p.csv","calibration_method":"raw","calibration_warning":null,"coverage_warning":0.8}`, false, "'/coverage_warning': got number, want null or string"},
		{"unknown calibration", `{"type":"fold_complete","fold_id":0,"predictions_path":"p.csv","calibration_method":"platt","calibration_warning":null,"coverage_warning":null}`, false, "'/calibration_method'"},
		{"error missing", `{"type":"training_error"}`, false, "missing property 'error'"},
		{"prediction missing field", `{"type":"prediction_delta","fold_id":0,"epoch":1,"predictions":[{"timestamp":"2023-01-01T00:00:00Z","mu":0.1}]}`, false, "'/predictions/0'"},
		{"predictions an object", `{"type":"prediction_delta","fold_id":0,"epoch":1,"predictions":{}}`, false, "'/predictions': got object, want array"},
		{"notification bad level", `{"type":"notification","level":"error","kind":"x","message":"m"}`, false, "'/level'"},
		{"notification value string", `{"type":"notification","level":"info","kind":"best_auc","message":"m","value":"0.7"}`, false, "'/value': got string"},
		{"batch 0", `{"type":"batch_progress","fold_id":0,"epoch":0,"batch":0,"total_batches":20}`, false, "'/batch': minimum"},
		{"hpo_trial unknown state", `{"type":"hpo_trial","trial":0,"total_trials":1,"state":"running","params":{"lr":0.001,"hidden":[64],"batch_size":64},"value":null,"best_trial":null,"best_value":null,"elapsed_seconds":1}`, false, "'/state'"},
		{"hpo_trial no params", `{"type":"hpo_trial","trial":0,"total_trials":1,"state":"failed","value":null,"best_trial":null,"best_value":null,"elapsed_seconds":1}`, false, "params"},
		{"seq 0", `{"type":"pong","run_id":"r","seq":0}`, false, "'/seq': minimum"},
		{"seq a string", `{"type":"pong","run_id":"r","seq":"1"}`, false, "'/seq': got string"},
		{"run_id empty", `{"type":"pong","run_id":"","seq":1}`, false, "'/run_id'"},
		{"run_id a number", `{"type":"pong","run_id":7,"seq":1}`, false, "'/run_id': got number"},
		{"seq a float", `{"type":"pong","run_id":"r","seq":1.5}`, false, "'/seq': got number, want integer"},
		{"steps missing total", `{"status":"steps","message":"m","step_name":"Etape 5 sur 25","step":5}`, false, "missing property 'total_step'"},
		{"step a string", `{"status":"steps","message":"m","step_name":"s","step":"5","total_step":25}`, false, "'/step': got string"},
		{"payload null", `{"status":"output","payload":null}`, false, "'/payload': got null, want array"},
		{"payload item missing date", `{"status":"output","payload":[{"predicted_affluence":45,"conf_low":40,"conf_high":50,"confidence_score":"High"}]}`, false, "missing property 'date'"},
		{"payload bad date", `{"status":"output","payload":[{"date":"01/02/2026","predicted_affluence":45,"conf_low":40,"conf_high":50,"confidence_score":"High"}]}`, false, "'/payload/0/date'"},
		{"payload affluence string", `{"status":"output","payload":[{"date":"2026-02-01","predicted_affluence":"45","conf_low":40,"conf_high":50,"confidence_score":"High"}]}`, false, "'/payload/0/predicted_affluence': got string"},
		{"error message missing", `{"status":"error"}`, false, "missing property 'message'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate([]byte(tt.msg))
			if err == nil {
				t.Fatalf("Validate(%s) = nil", tt.msg)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate(%s) = %v, want an error containing %q", tt.msg, err, tt.want)
			}
			if got := errors.Is(err, ErrUnknownMessage); got != tt.unknown {
				t.Errorf("errors.Is(%v, ErrUnknownMessage) = %v, want %v", err, got, tt.unknown)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The file tables cover every embedded schema file, and each file's $id
// and type/status const agree with its name.
func TestSchemaFilesListed(t *testing.T) {
	listed := map[string]bool{RunRequestSchema: true}
	for typ, f := range wsSchemas {
		listed[f] = true
		s := loadSchema(t, f)
		if got := s.prop(t, "type")["const"]; got != typ {
			t.Errorf("%s: type const %v, want %q", f, got, typ)
		}
	}
	for st, f := range predictSchemas {
		listed[f] = true
		s := loadSchema(t, f)
		if got := s.prop(t, "status")["const"]; got != st {
			t.Errorf("%s: status const %v, want %q", f, got, st)
		}
	}
	entries, err := fs.ReadDir(SchemaFS(), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !listed[e.Name()] {
			t.Errorf("%s is embedded but not listed", e.Name())
		}
		delete(listed, e.Name())
		s := loadSchema(t, e.Name())
		if s["$id"] != schemaBase+e.Name() {
			t.Errorf("%s: $id %v", e.Name(), s["$id"])
		}
		if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema %v, want draft 2020-12", e.Name(), s["$schema"])
		}
	}
	for f := range listed {
		t.Errorf("%s is listed but not embedded", f)
	}
	if _, err := compiled(); err != nil {
		t.Fatal(err)
	}
}

type jsonSchema map[string]any

func loadSchema(t *testing.T, name string) jsonSchema {
	t.Helper()
	b, err := fs.ReadFile(SchemaFS(), name)
	if err != nil {
		t.Fatal(err)
	}
	var s jsonSchema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

func (s jsonSchema) prop(t *testing.T, name string) map[string]any {
	t.Helper()
	props, _ := s["properties"].(map[string]any)
	p, ok := props[name].(map[string]any)
	if !ok {
		t.Fatalf("no property %q", name)
	}
	return p
}

// def returns the schema under $defs/name.
func (s jsonSchema) def(t *testing.T, name string) jsonSchema {
	t.Helper()
	defs, _ := s["$defs"].(map[string]any)
	d, ok := defs[name].(map[string]any)
	if !ok {
		t.Fatalf("no $defs/%s", name)
	}
	return d
}

func (s jsonSchema) required() []string {
	var out []string
	r, _ := s["required"].([]any)
	for _, v := range r {
		out = append(out, v.(string))
	}
	slices.Sort(out)
	return out
}

func (s jsonSchema) properties() []string {
	props, _ := s["properties"].(map[string]any)
	out := make([]string, 0, len(props))
	for k := range props {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestRunRequestLimitsMatchSchema keeps run_request.json's bounds and the Go
// constants in step.
func TestRunRequestLimitsMatchSchema(t *testing.T) {
	s := loadSchema(t, RunRequestSchema)
	if s["additionalProperties"] != false {
		t.Error("run_request.json must not allow additional properties")
	}
	for field, max := range map[string]float64{
		"folds": MaxFolds, "epochs": MaxEpochs, "batch_size": MaxBatchSize, "patience": MaxPatience, "horizons": MaxHorizons, "trials": MaxTrials,
	} {
		p := s.prop(t, field)
		if p["type"] != "integer" || p["minimum"] != 0.0 || p["maximum"] != max {
			t.Errorf("%s: %v, want an integer from 0 to %v", field, p, max)
		}
	}
	h := s.prop(t, "hidden")
	items := h["items"].(map[string]any)
	if h["maxItems"] != float64(MaxHiddenLayers) || items["minimum"] != 1.0 || items["maximum"] != float64(MaxHiddenWidth) {
		t.Errorf("hidden: %v", h)
	}
	if p := s.prop(t, "lr"); p["minimum"] != 0.0 || p["maximum"] != 1.0 {
		t.Errorf("lr: %v", p)
	}
	if got, want := s.prop(t, "dataset")["pattern"], strings.Replace(DatasetNamePattern, "{1,", "{0,", 1); got != want {
		t.Errorf("dataset pattern %v, want %v (DatasetNamePattern, or empty)", got, want)
	}
	if want := []any{"", RunKindTrain, RunKindTune}; !slices.Equal(s.prop(t, "kind")["enum"].([]any), want) {
		t.Errorf("kind enum %v, want %v", s.prop(t, "kind")["enum"], want)
	}
	enum := s.prop(t, "device")["enum"]
	if want := []any{"", DeviceAuto, DeviceCPU, DeviceGPU}; !slices.Equal(enum.([]any), want) {
		t.Errorf("device enum %v, want %v", enum, want)
	}
}
