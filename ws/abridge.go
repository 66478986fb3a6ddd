package ws

import (
	"bytes"
	"encoding/json"

	"github.com/kairoscope/kairoscope/schema"
)

// abridgeDelta is the /ws hub's Config.Abridge: a prediction_delta sent
// during training goes to clients without its rows ("predictions": [] and
// "omitted": how many), unless they connect with ?deltas=all. A run's
// deltas are 95% of its bytes and most clients never read them; measured
// with 1,000 clients (benchmarks/README.md, Hub), sending them whole to
// every client is what costs. The final delta of a fold, which the
// dashboard's reliability diagram reads, goes whole to everyone, and every
// other message is untouched, so seq stays gapless for all clients.
func abridgeDelta(msg []byte) []byte {
	if !bytes.HasPrefix(msg, []byte(`{"type":"prediction_delta"`)) {
		return nil
	}
	var d schema.PredictionDelta
	if json.Unmarshal(msg, &d) != nil || d.Final || len(d.Predictions) == 0 {
		return nil
	}
	d.Omitted, d.Predictions = len(d.Predictions), []schema.Prediction{}
	b, err := json.Marshal(&d)
	if err != nil {
		return nil
	}
	return b
}
