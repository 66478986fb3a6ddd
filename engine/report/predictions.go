package report

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Splits of a predictions row.
const (
	SplitCalib = "calib" // fitted calibration and the conformal quantile
	SplitScore = "score" // the rows every reported metric is computed on
)

// PredictionColumns is the header of a predictions CSV.
var PredictionColumns = []string{"timestamp", "horizon", "y_true", "mu", "sigma", "p_up_raw", "p_up_cal",
	"conf_low", "conf_high", "conformal_p", "pit_z", "split"}

// Prediction is one row of a fold's predictions CSV, in the change space of
// the model (y_true is the actual change of the transformed value).
type Prediction struct {
	Timestamp  time.Time // the target day
	Horizon    int
	YTrue      float64
	Mu, Sigma  float64
	PUpRaw     float64
	PUpCal     float64
	ConfLow    float64
	ConfHigh   float64
	ConformalP float64
	PITZ       float64
	Split      string
}

// PredictionsName is the file name of fold k's predictions written at t.
func PredictionsName(fold int, t time.Time) string {
	return fmt.Sprintf("predictions_fold_%d_%s.csv", fold, t.Format("20060102_150405"))
}

// WritePredictions writes rows atomically. Numbers are written with the
// fewest digits that read back to the same float64, so the metrics can be
// recomputed from the file exactly.
func WritePredictions(path string, rows []Prediction) error {
	return WriteFile(path, func(f *os.File) error {
		bw := bufio.NewWriter(f)
		w := csv.NewWriter(bw)
		w.Write(PredictionColumns)
		num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
		for _, r := range rows {
			w.Write([]string{r.Timestamp.UTC().Format(time.RFC3339), strconv.Itoa(r.Horizon), num(r.YTrue), num(r.Mu), num(r.Sigma),
				num(r.PUpRaw), num(r.PUpCal), num(r.ConfLow), num(r.ConfHigh), num(r.ConformalP), num(r.PITZ), r.Split})
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// ReadPredictions reads a file written by WritePredictions.
func ReadPredictions(path string) ([]Prediction, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	if len(recs) == 0 || len(recs[0]) != len(PredictionColumns) {
		return nil, fmt.Errorf("report: %s: not a predictions file", path)
	}
	rows := make([]Prediction, 0, len(recs)-1)
	for i, rec := range recs[1:] {
		var p Prediction
		var nums [9]float64
		ts, err := time.Parse(time.RFC3339, rec[0])
		if err != nil {
			return nil, fmt.Errorf("report: %s:%d: %w", path, i+2, err)
		}
		h, err := strconv.Atoi(rec[1])
		if err != nil {
			return nil, fmt.Errorf("report: %s:%d: %w", path, i+2, err)
		}
		for j := range nums {
			if nums[j], err = strconv.ParseFloat(rec[2+j], 64); err != nil {
				return nil, fmt.Errorf("report: %s:%d: %w", path, i+2, err)
			}
		}
		p.Timestamp, p.Horizon, p.Split = ts, h, rec[11]
		p.YTrue, p.Mu, p.Sigma, p.PUpRaw, p.PUpCal = nums[0], nums[1], nums[2], nums[3], nums[4]
		p.ConfLow, p.ConfHigh, p.ConformalP, p.PITZ = nums[5], nums[6], nums[7], nums[8]
		rows = append(rows, p)
	}
	return rows, nil
}
