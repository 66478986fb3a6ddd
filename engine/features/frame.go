package features

import (
	"fmt"
	"math"
	"time"

	"github.com/kairoscope/kairoscope/engine/dataset"
)

// Config says how model rows are built from a series.
type Config struct {
	Window    int       // past one-step changes used as inputs (default 14)
	Horizons  int       // targets per origin: h = 1..Horizons (1 for returns, 30 for affluence)
	Transform Transform // model space of the values
	Holidays  bool      // add US federal holiday flags for the origin and target days
}

// LongWindow is the span of the rolling statistics: an origin needs this
// many values up to and including itself.
const LongWindow = 28

// Frame is a series in model space plus the dates of the days after it, so
// rows can describe targets beyond the last observation when forecasting.
type Frame struct {
	Cfg   Config
	Dates []time.Time // observed dates, then Cfg.Horizons future ones
	Z     []float64   // model-space values, observed rows only
	First int         // first origin with a full lookback
	hol   []bool      // USHoliday of each of Dates, when Cfg.Holidays
}

// Row is one sample: features at origin T, target Z[T+H] − Z[T].
type Row struct{ T, H int }

// NewFrame transforms s and prepares its calendar.
func NewFrame(s *dataset.Series, cfg Config) (*Frame, error) {
	if cfg.Window < 1 || cfg.Horizons < 1 {
		return nil, fmt.Errorf("features: window %d and horizons %d must be at least 1", cfg.Window, cfg.Horizons)
	}
	if err := cfg.Transform.Check(s); err != nil {
		return nil, err
	}
	z := make([]float64, len(s.Values))
	for i, v := range s.Values {
		z[i] = cfg.Transform.Apply(v)
	}
	dates := append(append([]time.Time(nil), s.Dates...), s.Future(cfg.Horizons)...)
	f := &Frame{Cfg: cfg, Dates: dates, Z: z, First: max(LongWindow, cfg.Window+1) - 1}
	if cfg.Holidays { // once per date: a long series has 30 rows per origin
		f.hol = make([]bool, len(dates))
		for i, d := range dates {
			f.hol[i] = USHoliday(d)
		}
	}
	return f, nil
}

// N is the number of observed values.
func (f *Frame) N() int { return len(f.Z) }

// NumFeatures is the width of a feature row.
func (f *Frame) NumFeatures() int {
	n := f.Cfg.Window + 4 + 7 + 7 + 4 // changes, level gaps and spreads, two weekdays, season
	if f.Cfg.Horizons > 1 {
		n++
	}
	if f.Cfg.Holidays {
		n += 2
	}
	return n
}

// Target is the change the model predicts for row r.
func (f *Frame) Target(r Row) float64 { return f.Z[r.T+r.H] - f.Z[r.T] }

// Features writes row r's features into dst (len NumFeatures). Only values
// up to and including Z[r.T] are read, and the calendar of the target day.
func (f *Frame) Features(dst []float64, r Row) {
	t, z := r.T, f.Z
	i := 0
	for k := 0; k < f.Cfg.Window; k++ { // the last Window one-step changes
		dst[i] = z[t-k] - z[t-k-1]
		i++
	}
	for _, w := range [...]int{7, LongWindow} {
		mean, sd := rolling(z, t, w)
		dst[i], dst[i+1] = z[t]-mean, sd
		i += 2
	}
	for _, d := range [...]time.Time{f.Dates[t], f.Dates[t+r.H]} { // weekday of origin and target
		for wd := 0; wd < 7; wd++ {
			dst[i] = b2f(int(d.Weekday()) == wd)
			i++
		}
	}
	target := f.Dates[t+r.H]
	doy := 2 * math.Pi * float64(target.YearDay()-1) / 365.25
	dst[i], dst[i+1], dst[i+2], dst[i+3] = math.Sin(doy), math.Cos(doy), math.Sin(2*doy), math.Cos(2*doy)
	i += 4
	if f.Cfg.Horizons > 1 {
		dst[i] = float64(r.H) / float64(f.Cfg.Horizons)
		i++
	}
	if f.Cfg.Holidays {
		dst[i], dst[i+1] = b2f(f.hol[t]), b2f(f.hol[t+r.H])
	}
}

// rolling returns the mean of z over the w values ending at t and the
// standard deviation of the one-step changes inside that span.
func rolling(z []float64, t, w int) (mean, sd float64) {
	for _, v := range z[t-w+1 : t+1] {
		mean += v
	}
	mean /= float64(w)
	var s, s2 float64
	for k := t - w + 2; k <= t; k++ {
		d := z[k] - z[k-1]
		s += d
		s2 += d * d
	}
	m := float64(w - 1)
	return mean, math.Sqrt(math.Max(0, s2/m-(s/m)*(s/m)))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Rows lists the samples with origins in [from, to), every horizon in hs,
// and a target index at most maxTarget.
func (f *Frame) Rows(from, to, maxTarget int, hs []int) []Row {
	var rows []Row
	for t := max(from, f.First); t < to; t++ {
		for _, h := range hs {
			if t+h <= maxTarget {
				rows = append(rows, Row{t, h})
			}
		}
	}
	return rows
}

// AllHorizons is 1..Horizons.
func (f *Frame) AllHorizons() []int {
	hs := make([]int, f.Cfg.Horizons)
	for i := range hs {
		hs[i] = i + 1
	}
	return hs
}

// Matrix builds the raw feature matrix (row-major) and targets of rows.
// Targets of rows past the observed end (forecasting) are NaN.
func (f *Frame) Matrix(rows []Row) (x, y []float64) {
	nf := f.NumFeatures()
	x = make([]float64, len(rows)*nf)
	y = make([]float64, len(rows))
	for i, r := range rows {
		f.Features(x[i*nf:(i+1)*nf], r)
		if r.T+r.H < len(f.Z) {
			y[i] = f.Target(r)
		} else {
			y[i] = math.NaN()
		}
	}
	return x, y
}
