package schema

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// jsonFields lists the JSON names of a struct's fields as encoding/json
// writes them (embedded structs flattened), and those it always writes (no
// omitempty).
func jsonFields(t reflect.Type) (all, always []string) {
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			a, w := jsonFields(f.Type)
			all, always = append(all, a...), append(always, w...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		all = append(all, name)
		if !slices.Contains(strings.Split(opts, ","), "omitempty") {
			always = append(always, name)
		}
	}
	slices.Sort(all)
	slices.Sort(always)
	return all, always
}

// Each schema's required list is exactly the fields its Go type always
// sends, and its properties are exactly the Go type's fields (plus run_id
// and seq on /ws), so the types and the files cannot drift apart.
func TestSchemasMatchGoTypes(t *testing.T) {
	type pair struct {
		file, def string       // def: a $defs entry of file, "" for the file itself
		typ       reflect.Type // the Go type it describes
		// notRequired are fields the Go type always sends that the schema
		// does not require, because the seed does not.
		notRequired []string
	}
	pairs := []pair{
		{file: "ws.dataset_ready.json", typ: reflect.TypeFor[DatasetReady]()},
		{file: "ws.training_start.json", typ: reflect.TypeFor[TrainingStart]()},
		{file: "ws.epoch_metrics.json", typ: reflect.TypeFor[EpochMetrics]()},
		{file: "ws.fold_complete.json", typ: reflect.TypeFor[FoldComplete]()},
		{file: "ws.training_complete.json", typ: reflect.TypeFor[TrainingComplete]()},
		{file: "ws.training_error.json", typ: reflect.TypeFor[TrainingError]()},
		{file: "ws.prediction_delta.json", typ: reflect.TypeFor[PredictionDelta]()},
		{file: "ws.prediction_delta.json", def: "prediction", typ: reflect.TypeFor[Prediction]()},
		{file: "ws.notification.json", typ: reflect.TypeFor[Notification]()},
		{file: "ws.batch_progress.json", typ: reflect.TypeFor[BatchProgress]()},
		{file: "ws.hpo_trial.json", typ: reflect.TypeFor[HPOTrial]()},
		{file: "ws.hpo_trial.json", def: "params", typ: reflect.TypeFor[HPOParams]()},
		{file: "ws.pong.json", typ: reflect.TypeFor[Pong]()},
		// ChartRow has its own JSON form (one member per column), checked by
		// TestChartRowJSON instead.
		{file: "ws.chart_update.json", typ: reflect.TypeFor[ChartUpdate]()},
		{file: "predict.message.json", typ: reflect.TypeFor[PredictMessage]()},
		{file: "predict.steps.json", typ: reflect.TypeFor[PredictSteps]()},
		{file: "predict.output.json", typ: reflect.TypeFor[PredictOutput]()},
		// The seed's output example documents five item fields and elides
		// the rest ("..."); Kairoscope always sends three more.
		{file: "predict.output.json", def: "forecast_item", typ: reflect.TypeFor[ForecastItem](), notRequired: []string{"mu", "p_up", "sigma"}},
		{file: "predict.error.json", typ: reflect.TypeFor[PredictError]()},
		{file: RunRequestSchema, typ: reflect.TypeFor[RunRequest]()},
	}
	covered := map[string]bool{}
	for _, p := range pairs {
		t.Run(p.file+"#"+p.def, func(t *testing.T) {
			covered[p.file] = true
			s := loadSchema(t, p.file)
			if p.def != "" {
				s = s.def(t, p.def)
			}
			all, always := jsonFields(p.typ)
			wantRequired := slices.DeleteFunc(slices.Clone(always), func(f string) bool { return slices.Contains(p.notRequired, f) })
			if got := s.required(); !slices.Equal(got, wantRequired) {
				t.Errorf("required %v, want %v (the fields %s always sends)", got, wantRequired, p.typ)
			}
			wantProps := slices.Clone(all)
			if strings.HasPrefix(p.file, "ws.") && p.def == "" {
				wantProps = append(wantProps, FieldRunID, FieldSeq)
				slices.Sort(wantProps)
			}
			if got := s.properties(); !slices.Equal(got, wantProps) {
				t.Errorf("properties %v, want %v (the fields of %s)", got, wantProps, p.typ)
			}
			// Server messages may carry added fields; a run request may not.
			wantAdditional := p.file != RunRequestSchema
			if got := s["additionalProperties"]; got != wantAdditional {
				t.Errorf("additionalProperties %v, want %v", got, wantAdditional)
			}
		})
	}
	for f := range wsSchemas {
		if !covered[wsSchemas[f]] {
			t.Errorf("%s has no Go type in this test", wsSchemas[f])
		}
	}
	for f := range predictSchemas {
		if !covered[predictSchemas[f]] {
			t.Errorf("%s has no Go type in this test", predictSchemas[f])
		}
	}
}

// Every /ws schema describes run_id and seq the same way.
func TestEnvelopeOnEveryWSSchema(t *testing.T) {
	ref := loadSchema(t, wsSchemas[TypePong])
	for _, f := range wsSchemas {
		s := loadSchema(t, f)
		for _, field := range []string{FieldRunID, FieldSeq} {
			if got, want := s.prop(t, field), ref.prop(t, field); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s is %v, want %v", f, field, got, want)
			}
		}
	}
	if s := ref.prop(t, FieldSeq); s["type"] != "integer" || s["minimum"] != 1.0 {
		t.Errorf("seq: %v, want an integer >= 1", s)
	}
	if s := ref.prop(t, FieldRunID); s["type"] != "string" || s["minLength"] != 1.0 {
		t.Errorf("run_id: %v, want a non-empty string", s)
	}
}
