package schema

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The JSON Schema (draft 2020-12) files: one per message of each dialect and
// one for RunRequest. Each file's $id is schemaBase + its name.
//
//go:embed jsonschema/*.json
var files embed.FS

const schemaBase = "https://github.com/kairoscope/kairoscope/schema/jsonschema/"

// RunRequestSchema is the file that describes RunRequest.
const RunRequestSchema = "run_request.json"

// wsSchemas and predictSchemas name the file for each /ws type and each
// /ws/predict status. A test checks that they list every file.
var (
	wsSchemas = map[string]string{
		TypeDatasetReady:     "ws.dataset_ready.json",
		TypeTrainingStart:    "ws.training_start.json",
		TypeEpochMetrics:     "ws.epoch_metrics.json",
		TypeFoldComplete:     "ws.fold_complete.json",
		TypeTrainingComplete: "ws.training_complete.json",
		TypeTrainingError:    "ws.training_error.json",
		TypePredictionDelta:  "ws.prediction_delta.json",
		TypeBatchProgress:    "ws.batch_progress.json",
		TypeHPOTrial:         "ws.hpo_trial.json",
		TypeNotification:     "ws.notification.json",
		TypePong:             "ws.pong.json",
		TypeChartUpdate:      "ws.chart_update.json",
	}
	predictSchemas = map[string]string{
		StatusMessage: "predict.message.json",
		StatusSteps:   "predict.steps.json",
		StatusOutput:  "predict.output.json",
		StatusError:   "predict.error.json",
	}
)

// ErrUnknownMessage is matched by Validate's error for a message whose
// "type" (/ws) or "status" (/ws/predict) names no message of either dialect,
// or that has neither.
var ErrUnknownMessage = errors.New("unknown message")

// SchemaFS returns the JSON Schema files, read-only, for serving or
// inspection: ws.<type>.json for each /ws message, predict.<status>.json
// for each /ws/predict message, and run_request.json.
func SchemaFS() fs.FS {
	sub, err := fs.Sub(files, "jsonschema")
	if err != nil {
		panic(err) // a constant, valid path: cannot happen
	}
	return sub
}

// compiled holds every schema, compiled on first use. The files are
// embedded, so a failure is a bug in them, which the package's tests catch;
// it is returned, not panicked.
var compiled = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	entries, err := fs.ReadDir(files, "jsonschema")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		doc, err := readJSON("jsonschema/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("schema: %s: %w", e.Name(), err)
		}
		if err := c.AddResource(schemaBase+e.Name(), doc); err != nil {
			return nil, fmt.Errorf("schema: %s: %w", e.Name(), err)
		}
	}
	out := make(map[string]*jsonschema.Schema, len(entries))
	for _, e := range entries {
		sch, err := c.Compile(schemaBase + e.Name())
		if err != nil {
			return nil, fmt.Errorf("schema: %s: %w", e.Name(), err)
		}
		out[e.Name()] = sch
	}
	return out, nil
})

func readJSON(name string) (any, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

// Validate checks one message as sent on the wire against its JSON Schema,
// chosen by its "type" field (a /ws message) or else its "status" field (a
// /ws/predict message). A message that is not one JSON object, or names no
// known type or status (ErrUnknownMessage), is an error. The server's added
// run_id and seq are allowed on /ws messages.
//
// Validate is safe for concurrent use; the schemas are compiled once, on the
// first call.
func Validate(msg []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(msg))
	if err != nil {
		return fmt.Errorf("schema: message is not JSON: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return errors.New("schema: message is not a JSON object")
	}
	var name string
	if t, ok := obj["type"]; ok {
		s, _ := t.(string)
		if name, ok = wsSchemas[s]; !ok {
			return fmt.Errorf("schema: %w: /ws type %v", ErrUnknownMessage, quote(t))
		}
	} else if st, ok := obj["status"]; ok {
		s, _ := st.(string)
		if name, ok = predictSchemas[s]; !ok {
			return fmt.Errorf("schema: %w: /ws/predict status %v", ErrUnknownMessage, quote(st))
		}
	} else {
		return fmt.Errorf("schema: %w: no \"type\" (/ws) or \"status\" (/ws/predict) field", ErrUnknownMessage)
	}
	return validateDoc(name, doc)
}

// quote shows a JSON value from a message in an error.
func quote(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v (not a string)", v)
}

// validateDoc validates a decoded JSON value (from jsonschema.UnmarshalJSON)
// against the named file.
func validateDoc(name string, doc any) error {
	schemas, err := compiled()
	if err != nil {
		return err
	}
	sch, ok := schemas[name]
	if !ok {
		return fmt.Errorf("schema: no schema file %s", name)
	}
	if err := sch.Validate(doc); err != nil {
		return fmt.Errorf("schema: %s: %w", name, err)
	}
	return nil
}

// ValidateRunRequest checks a RunRequest body against run_request.json.
// DecodeRunRequest is stricter (it also rejects duplicated keys and
// integers written as 1.0), so a body it accepts always passes.
func ValidateRunRequest(body []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("schema: run request is not JSON: %w", err)
	}
	return validateDoc(RunRequestSchema, doc)
}
