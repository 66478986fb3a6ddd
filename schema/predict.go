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
