package schema

import (
	"errors"
	"strings"
	"testing"
)

// The requests are refused by the default limit, the defaults and
// the README's examples are not.
func TestRunRequestCost(t *testing.T) {
	const limit = 1e14 // ws.DefaultConfig().MaxRunCost
	const bike, transit = 731, 5700
	for _, tc := range []struct {
		name  string
		req   RunRequest
		rows  int
		ohlcv bool
		ok    bool
	}{
		{"defaults", RunRequest{}, bike, false, true},
		{"README's example", RunRequest{Folds: 5, Epochs: 25, BatchSize: 256, Hidden: []int{64, 64}}, bike, false, true},
		{"a default tune", RunRequest{Kind: RunKindTune}, bike, false, true},
		{"a default tune of transit", RunRequest{Kind: RunKindTune}, transit, false, true},
		{"20 folds × 1000 epochs of transit", RunRequest{Folds: 20, Epochs: 1000}, transit, false, true},
		{"sp500 at the maximum folds and epochs", RunRequest{Folds: 20, Epochs: 1000}, 2500, true, true},
		{"50 trials × 20 folds × 1000 epochs", RunRequest{Kind: RunKindTune, Trials: 50, Folds: 20, Epochs: 1000}, bike, false, false},
		{"eight 4096-wide layers", RunRequest{Hidden: []int{4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096}}, bike, false, false},
	} {
		err := tc.req.CheckCost(tc.rows, tc.ohlcv, limit)
		if (err == nil) != tc.ok {
			t.Errorf("%s: cost %v: err %v, want accepted %v", tc.name, tc.req.Cost(tc.rows, tc.ohlcv), err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrRunTooCostly) || !errors.Is(err, ErrInvalidRunRequest) || !strings.Contains(err.Error(), "--max-run-cost") ||
			!strings.HasPrefix(err.Error(), "invalid run request: cost: ")) {
			t.Errorf("%s: error %q", tc.name, err)
		}
	}
	c := RunRequest{Folds: 2, Epochs: 3, Hidden: []int{10}}.Cost(100, false)
	if want := (RunCost{Trials: 1, Folds: 2, Epochs: 3, Samples: 3000, Weights: 40*10 + 10*3}); c != want || c.Total() != 2*3*3000*430 {
		t.Errorf("cost %+v, want %+v", c, want)
	}
}
