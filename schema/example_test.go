package schema_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/kairoscope/kairoscope/schema"
)

// A message of the training hub (/ws) on the wire: a metric that is
// undefined (NaN) travels as null, and the hub adds run_id and seq at the
// end.
func Example_trainingHub() {
	msg := schema.EpochMetrics{
		Type: schema.TypeEpochMetrics, FoldID: 0, Epoch: 10,
		Metrics: schema.Metrics{
			TrainLoss: 0.1234, TrainNLL: 0.0987, TrainBCE: 0.0234, TrainBrier: 0.1345,
			ValLoss: 0.2345, ValNLL: 0.1987, ValBCE: 0.0456, ValBrier: 0.1567,
			ValAUC: schema.Float(math.NaN()), // one class in the validation block
			DirAcc: 0.5678, ECE: 0.0456, MZIntercept: 0.0012, MZSlope: 0.9987, MZFp: 0.3456,
			PITKSp: 0.4567, ConformalCoverage: 0.9012, ConformalWidth: 0.1234,
		},
		ElapsedSeconds: 123.45,
	}
	b, _ := json.Marshal(msg)
	b = append(b[:len(b)-1], `,"run_id":"run-1","seq":12}`...)
	fmt.Println(string(b))
	fmt.Println(schema.Validate(b))
	// Output:
	// {"type":"epoch_metrics","fold_id":0,"epoch":10,"train_loss":0.1234,"train_nll":0.0987,"train_bce":0.0234,"train_brier":0.1345,"val_loss":0.2345,"val_nll":0.1987,"val_bce":0.0456,"val_brier":0.1567,"val_auc":null,"DirAcc":0.5678,"ECE":0.0456,"MZ_intercept":0.0012,"MZ_slope":0.9987,"MZ_F_p":0.3456,"PIT_KS_p":0.4567,"conformal_coverage":0.9012,"conformal_width":0.1234,"elapsed_seconds":123.45,"run_id":"run-1","seq":12}
	// <nil>
}

// Messages of the prediction pipeline (/ws/predict) on the wire: progress,
// then the result. Counts travel as integers.
func Example_predictionPipeline() {
	for _, msg := range []any{
		schema.PredictSteps{Status: schema.StatusSteps, Message: "Prédiction Kairoscope du futur en cours...",
			StepName: "Etape 5 sur 25", Step: 5, TotalStep: 25},
		schema.PredictOutput{Status: schema.StatusOutput, Payload: schema.ForecastPayload{{
			Date: "2026-02-01", PredictedAffluence: "45", ConfLow: "40", ConfHigh: "50",
			ConfidenceScore: "High", PUp: 0.53, Mu: 0.012, Sigma: 0.2,
		}}},
	} {
		b, _ := json.Marshal(msg)
		fmt.Println(string(b))
	}
	// Output:
	// {"status":"steps","message":"Prédiction Kairoscope du futur en cours...","step_name":"Etape 5 sur 25","step":5,"total_step":25}
	// {"status":"output","payload":[{"date":"2026-02-01","predicted_affluence":45,"conf_low":40,"conf_high":50,"confidence_score":"High","p_up":0.53,"mu":0.012,"sigma":0.2}]}
}

// The seed's future extensions, as Kairoscope sends them.
func ExampleNotification() {
	fold, auc := 2, schema.Float(0.6789)
	for _, msg := range []any{
		schema.Notification{Type: schema.TypeNotification, Level: schema.LevelInfo, Kind: schema.KindBestAUC,
			Message: "Fold 2 reached its best validation AUC so far: 0.6789.", FoldID: &fold, Value: &auc},
		schema.Notification{Type: schema.TypeNotification, Level: schema.LevelInfo, Kind: schema.KindProgress50,
			Message: "Training is 50% complete."},
		schema.BatchProgress{Type: schema.TypeBatchProgress, FoldID: 2, Epoch: 7, Batch: 3, TotalBatches: 20},
		schema.HPOTrial{Type: schema.TypeHPOTrial, Trial: 2, TotalTrials: 8, State: schema.TrialComplete,
			Params: schema.HPOParams{LR: 0.0021, Hidden: []int{64, 64}, BatchSize: 128}, Value: 1.42, BestTrial: &fold, BestValue: 1.42, ElapsedSeconds: 31.5},
		schema.Pong{Type: schema.TypePong},
	} {
		b, _ := json.Marshal(msg)
		fmt.Println(string(b))
	}
	// Output:
	// {"type":"notification","level":"info","kind":"best_auc","message":"Fold 2 reached its best validation AUC so far: 0.6789.","fold_id":2,"value":0.6789}
	// {"type":"notification","level":"info","kind":"progress_50","message":"Training is 50% complete."}
	// {"type":"batch_progress","fold_id":2,"epoch":7,"batch":3,"total_batches":20}
	// {"type":"hpo_trial","trial":2,"total_trials":8,"state":"complete","params":{"lr":0.0021,"hidden":[64,64],"batch_size":128},"value":1.42,"best_trial":2,"best_value":1.42,"elapsed_seconds":31.5}
	// {"type":"pong"}
}

func ExampleValidate() {
	fmt.Println(schema.Validate([]byte(`{"status":"message","message":"Chargement des données..."}`)))
	fmt.Println(schema.Validate([]byte(`{"type":"dataset_ready","size":"10000","min_samples":2048}`)))
	err := schema.Validate([]byte(`{"type":"candle"}`))
	fmt.Println(err, errors.Is(err, schema.ErrUnknownMessage))
	// Output:
	// <nil>
	// schema: ws.dataset_ready.json: jsonschema validation failed with 'https://github.com/kairoscope/kairoscope/schema/jsonschema/ws.dataset_ready.json#'
	// - at '/size': got string, want integer
	// schema: unknown message: /ws type "candle" true
}

// Rows appended to an OHLCV dataset, as /ws sends them: outside any run,
// so without run_id and seq. Each row lists the dataset's columns in order.
func ExampleChartUpdate() {
	msg := schema.ChartUpdate{Type: schema.TypeChartUpdate, Dataset: "spx", Target: "close", OHLCV: true,
		Columns: []string{"date", "open", "high", "low", "close", "volume"},
		Rows: []schema.ChartRow{{Date: "2020-04-20", Values: []schema.ChartValue{
			{Column: "open", Value: schema.NumberValue(2845.62)}, {Column: "high", Value: schema.NumberValue(2868.98)},
			{Column: "low", Value: schema.NumberValue(2820.43)}, {Column: "close", Value: schema.NumberValue(2823.16)},
			{Column: "volume", Value: schema.NumberValue(5220160000)}}}},
		Part: 1, Parts: 1, Appended: 1, TotalRows: 5106, Last: "2020-04-20",
		Hash:         "9f2c0d4e8b7a6f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6",
		PreviousHash: "1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff001",
	}
	b, _ := json.Marshal(msg)
	fmt.Println(string(b))
	fmt.Println(schema.Validate(b))
	// Output:
	// {"type":"chart_update","dataset":"spx","target":"close","ohlcv":true,"columns":["date","open","high","low","close","volume"],"rows":[{"date":"2020-04-20","open":2845.62,"high":2868.98,"low":2820.43,"close":2823.16,"volume":5220160000}],"part":1,"parts":1,"appended":1,"total_rows":5106,"last":"2020-04-20","hash":"9f2c0d4e8b7a6f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6","previous_hash":"1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff001"}
	// <nil>
}

func ExampleDecodeRunRequest() {
	req, err := schema.DecodeRunRequest(strings.NewReader(`{"dataset":"bike","epochs":10,"hidden":[32,32]}`), 4096)
	fmt.Printf("%+v %v\n", req, err)

	_, err = schema.DecodeRunRequest(strings.NewReader(`{"dataset":"bike","folds":50}`), 4096)
	fmt.Println(err)
	fmt.Println(errors.Is(err, schema.ErrInvalidRunRequest)) // the server answers 400 with err's text

	_, err = schema.DecodeRunRequest(strings.NewReader(`{"dataset":"../data/bike.csv"}`), 4096)
	fmt.Println(err)
	// Output:
	// {Dataset:bike Folds:0 Epochs:10 BatchSize:0 Hidden:[32 32] LR:0 Seed:0 Device: Patience:<nil> Horizons:0 OnOOM: Kind: Trials:0} <nil>
	// invalid run request: folds: must be from 1 to 20 (0 or absent: server default), got 50
	// true
	// invalid run request: dataset: must be the name of an embedded dataset matching ^[a-z0-9_-]{1,64}$ (such as "bike"), not a path; got "../data/bike.csv"
}
