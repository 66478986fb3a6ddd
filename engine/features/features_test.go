package features

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/kairoscope/kairoscope/engine/dataset"
)

func loadBike(t *testing.T) *dataset.Series {
	t.Helper()
	s, err := dataset.Load("../../datasets/bike.csv", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bikeFrame(t *testing.T, s *dataset.Series) *Frame {
	t.Helper()
	f, err := NewFrame(s, Config{Window: 14, Horizons: 30, Transform: ChooseTransform(s), Holidays: true})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The training rows and the scaler of a fold must not change when every
// value after the first validation origin changes: no validation target can
// leak into training.
func TestTrainingPartIgnoresValidationValues(t *testing.T) {
	s := loadBike(t)
	f := bikeFrame(t, s)
	folds, err := WalkForward(f.First, f.N()-2, 3, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	for _, fo := range folds {
		x1, y1 := f.Matrix(f.TrainRows(fo))
		sc1 := FitScaler(x1, f.NumFeatures(), y1)

		poisoned := *s
		poisoned.Values = append([]float64(nil), s.Values...)
		for i := fo.ValStart + 1; i < len(poisoned.Values); i++ {
			poisoned.Values[i] = poisoned.Values[i]*7 + 1000
		}
		g := bikeFrame(t, &poisoned)
		x2, y2 := g.Matrix(g.TrainRows(fo))
		sc2 := FitScaler(x2, g.NumFeatures(), y2)
		if !reflect.DeepEqual(x1, x2) || !reflect.DeepEqual(y1, y2) || !reflect.DeepEqual(sc1, sc2) {
			t.Errorf("fold %d: training part changed when validation values changed", fo.ID)
		}
		// The check can fail: the calibration rows do see those values.
		xc1, _ := f.Matrix(f.CalibRows(fo))
		xc2, _ := g.Matrix(g.CalibRows(fo))
		if reflect.DeepEqual(xc1, xc2) {
			t.Errorf("fold %d: poisoning did not reach the validation rows; the test proves nothing", fo.ID)
		}
		for _, r := range f.TrainRows(fo) {
			if r.T+r.H > fo.ValStart {
				t.Fatalf("fold %d: training row %+v has a target after ValStart %d", fo.ID, r, fo.ValStart)
			}
		}
	}
}

func TestWalkForwardIsOrderedAndCoversTheEnd(t *testing.T) {
	folds, err := WalkForward(27, 729, 3, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if len(folds) != 3 {
		t.Fatalf("got %d folds", len(folds))
	}
	prev := 27
	for _, fo := range folds {
		if !(prev <= fo.ValStart && fo.ValStart < fo.ScoreStart && fo.ScoreStart < fo.End) {
			t.Errorf("fold %+v out of order after %d", fo, prev)
		}
		prev = fo.End
	}
	if folds[2].End != 730 {
		t.Errorf("last fold ends at %d, want 730 (last origin 729 included)", folds[2].End)
	}
	if _, err := WalkForward(0, 50, 5, 0.5); err == nil {
		t.Error("5 folds over 51 samples should be refused")
	}
}

func TestFeaturesUseOnlyThePast(t *testing.T) {
	s := loadBike(t)
	f := bikeFrame(t, s)
	r := Row{T: 100, H: 5}
	a := make([]float64, f.NumFeatures())
	f.Features(a, r)
	for i := r.T + 1; i < len(f.Z); i++ {
		f.Z[i] = math.NaN()
	}
	b := make([]float64, f.NumFeatures())
	f.Features(b, r)
	if !reflect.DeepEqual(a, b) {
		t.Error("features at t read values after t")
	}
	if got := f.Target(Row{T: 99, H: 1}); got != f.Z[100]-f.Z[99] {
		t.Errorf("target = %v", got)
	}
}

func TestScalerStandardisesAndKeepsZero(t *testing.T) {
	x := []float64{1, 5, 3, 5, 5, 5} // second column constant
	sc := FitScaler(x, 2, []float64{-2, 0, 2})
	xs := sc.X(x)
	if xs[0] != -float32(math.Sqrt(1.5)) || xs[1] != 0 {
		t.Errorf("scaled = %v", xs)
	}
	if ys := sc.Y([]float64{0, 2}); ys[0] != 0 || ys[1] <= 0 {
		t.Errorf("targets must keep their sign and zero: %v", ys)
	}
}

func TestUSHolidays(t *testing.T) {
	for _, c := range []struct {
		d    string
		want bool
	}{
		{"2011-07-04", true}, {"2012-11-22", true}, {"2011-12-26", true}, // Christmas 2011 on Sunday, observed Monday
		{"2010-12-31", true}, // New Year 2011 on Saturday, observed Friday
		{"2012-05-28", true}, {"2012-05-21", false}, {"2011-01-17", true}, {"2012-03-01", false},
		{"2020-06-19", false}, {"2021-06-18", true}, // Juneteenth from 2021, Saturday → Friday
	} {
		d, _ := time.Parse("2006-01-02", c.d)
		if got := USHoliday(d); got != c.want {
			t.Errorf("USHoliday(%s) = %v, want %v", c.d, got, c.want)
		}
	}
}
