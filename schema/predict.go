package schema

import "encoding/json"

// Statuses of the prediction pipeline (/ws/predict).
const (
	StatusMessage = "message"
	StatusSteps   = "steps"
	StatusOutput  = "output"
	StatusError   = "error"
)

// ForecastItem is one day of the pipeline's output payload. Counts
// (affluence) are JSON integers; other series carry decimals.
type ForecastItem struct {
	Date               string      `json:"date"` // YYYY-MM-DD
	PredictedAffluence json.Number `json:"predicted_affluence"`
	ConfLow            json.Number `json:"conf_low"`
	ConfHigh           json.Number `json:"conf_high"`
	ConfidenceScore    string      `json:"confidence_score"` // High, Medium or Low
	PUp                Float       `json:"p_up"`             // P(value on date > last observed value)
	Mu                 Float       `json:"mu"`               // predicted change from the last value, model space
	Sigma              Float       `json:"sigma"`            // its spread, model space
}

// ForecastPayload is the list sent as the output's payload.
type ForecastPayload []ForecastItem

// PredictMessage is a plain status line of the pipeline ("Chargement des
// données..."), also used to say that the GPU worker fell back to the CPU.
type PredictMessage struct {
	Status  string `json:"status"` // StatusMessage
	Message string `json:"message"`
}

// PredictSteps is the pipeline's progress bar, sent once per training epoch.
// Step is the current step, as StepName says it; TotalStep is an estimate
// that may decrease while running (early stopping), as the seed warns.
type PredictSteps struct {
	Status    string `json:"status"` // StatusSteps
	Message   string `json:"message"`
	StepName  string `json:"step_name"` // e.g. "Etape 5 sur 25"
	Step      int    `json:"step"`
	TotalStep int    `json:"total_step"`
}

// PredictOutput is the final result: one item per forecast day. Payload
// must not be nil: nil encodes as null, which predict.output.json rejects
// (an empty ForecastPayload{} encodes as []).
type PredictOutput struct {
	Status  string          `json:"status"` // StatusOutput
	Payload ForecastPayload `json:"payload"`
	// Dataset, DatasetHash and DatasetRows say which version of the data
	// the forecast was trained on, as in training_start. Not in the seed.
	Dataset     string `json:"dataset,omitempty"`
	DatasetHash string `json:"dataset_hash,omitempty"`
	DatasetRows int    `json:"dataset_rows,omitempty"`
}

// PredictError says the pipeline stopped; nothing follows it.
type PredictError struct {
	Status  string `json:"status"` // StatusError
	Message string `json:"message"`
}
