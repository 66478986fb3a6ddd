package agent

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/kairoscope/kairoscope/schema"
)

// milestones turns a run's messages into notifications (the schema's
// "Future Extensions" #4): halfway, a new best validation AUC, a fold
// stopped early, and the fold warnings. It sees every message in order.
type milestones struct {
	folds, epochs int
	done          int // epochs completed, all folds
	half          bool
	bestAUC       float64
	lastEpoch     int // last epoch seen in the current fold
	foldDone      int // epochs seen in the current fold
}

// progressMsg is the union of the fields milestones reads.
type progressMsg struct {
	Type               string        `json:"type"`
	Kind               string        `json:"kind"`
	TotalFolds         int           `json:"total_folds"`
	TotalEpochs        int           `json:"total_epochs"`
	FoldID             int           `json:"fold_id"`
	Epoch              int           `json:"epoch"`
	ValAUC             *schema.Float `json:"val_auc"`
	CalibrationWarning *string       `json:"calibration_warning"`
	CoverageWarning    *string       `json:"coverage_warning"`
}

func (m *milestones) observe(raw []byte) []*schema.Notification {
	if bytes.HasPrefix(raw, []byte(`{"type":"prediction_delta"`)) {
		return nil // the largest messages, and none is a milestone
	}
	var msg progressMsg
	if json.Unmarshal(raw, &msg) != nil {
		return nil
	}
	note := func(level, kind, text string) *schema.Notification {
		fold, epoch := msg.FoldID, msg.Epoch
		n := &schema.Notification{Type: schema.TypeNotification, Level: level, Kind: kind, Message: text, FoldID: &fold}
		if msg.Type == schema.TypeEpochMetrics {
			n.Epoch = &epoch
		}
		return n
	}
	var out []*schema.Notification
	switch msg.Type {
	case schema.TypeTrainingStart:
		m.folds, m.epochs = msg.TotalFolds, msg.TotalEpochs
	case schema.TypeEpochMetrics:
		m.done++
		m.foldDone++
		m.lastEpoch = msg.Epoch
		if msg.ValAUC != nil && float64(*msg.ValAUC) > m.bestAUC {
			if m.done > 1 {
				n := note(schema.LevelInfo, schema.KindBestAUC, fmt.Sprintf("best validation AUC so far: %.4f (fold %d, epoch %d)", float64(*msg.ValAUC), msg.FoldID, msg.Epoch))
				v := *msg.ValAUC
				n.Value = &v
				out = append(out, n)
			}
			m.bestAUC = float64(*msg.ValAUC)
		}
		// Early stopping shrinks the work still to do; progress counts the
		// epochs of finished folds as done (see fold_complete).
		if total := m.folds * m.epochs; !m.half && total > 0 && 2*m.done >= total {
			m.half = true
			out = append(out, note(schema.LevelInfo, schema.KindProgress50, "training is 50% complete"))
		}
	case schema.TypeNotification:
		if msg.Kind == schema.KindOOMRetry { // the fold starts again: its epochs so far do not count
			m.done -= m.foldDone
			m.foldDone = 0
		}
	case schema.TypeFoldComplete:
		m.foldDone = 0
		if m.lastEpoch+1 < m.epochs {
			out = append(out, note(schema.LevelInfo, schema.KindEarlyStop, fmt.Sprintf("fold %d stopped early after %d of %d epochs", msg.FoldID, m.lastEpoch+1, m.epochs)))
			m.done += m.epochs - m.lastEpoch - 1
		}
		if msg.CalibrationWarning != nil {
			out = append(out, note(schema.LevelWarning, schema.KindCalibrationWarning, *msg.CalibrationWarning))
		}
		if msg.CoverageWarning != nil {
			out = append(out, note(schema.LevelWarning, schema.KindCoverageWarning, *msg.CoverageWarning))
		}
	}
	return out
}
