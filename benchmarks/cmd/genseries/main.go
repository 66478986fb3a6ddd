package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/kairoscope/kairoscope/engine/features"
)

// spec describes one series: log(count) is
//
//	level(t) + weekly[weekday] + yearly(t) + holiday + AR(1) noise
//
// with the level a slow random walk plus, for shift series, a fall of
// shiftDepth (in log) spread linearly over shiftDays days starting at
// shiftAt days before the end, after which the level stays down.
type spec struct {
	path       string
	start      string
	days       int
	seed       uint64
	base       float64    // log of the typical daily count
	weekly     [7]float64 // Sunday first
	yearly     float64    // amplitude of the annual cycle
	holiday    float64    // effect of a US federal holiday
	drift      float64    // daily step of the level's random walk
	noise, phi float64    // AR(1) innovation sd and coefficient
	shiftAt    int        // days before the end where the fall starts (0: none)
	shiftDays  int
	shiftDepth float64
}

var series = []spec{
	{ // a city's daily public-transit boardings, weekday commuting
		path: "datasets/transit.csv", start: "2009-01-01", days: 5700, seed: 11, base: math.Log(1.2e6),
		weekly: [7]float64{-0.75, 0.08, 0.12, 0.13, 0.12, 0.07, -0.45}, yearly: 0.08, holiday: -0.55,
		drift: 0.004, noise: 0.035, phi: 0.6,
	},
	{ // a museum's daily visits: weekends busiest, strong summer season
		path: "benchmarks/data/visits_2000.csv", start: "2015-03-01", days: 2000, seed: 22, base: math.Log(900),
		weekly: [7]float64{0.35, -0.45, -0.1, -0.05, 0, 0.05, 0.3}, yearly: 0.3, holiday: 0.2,
		drift: 0.006, noise: 0.09, phi: 0.5,
	},
	{ // a city centre's daily pedestrian counts through a lockdown: the
		// level falls by 65% within three weeks, 200 days before the end,
		// and stays there
		path: "benchmarks/data/footfall_shift.csv", start: "2017-01-01", days: 1200, seed: 33, base: math.Log(24000),
		weekly: [7]float64{-0.2, -0.05, 0, 0.02, 0.05, 0.12, 0.15}, yearly: 0.12, holiday: -0.3,
		drift: 0.003, noise: 0.06, phi: 0.5,
		shiftAt: 200, shiftDays: 21, shiftDepth: math.Log(0.35),
	},
}

func main() {
	root := flag.String("root", ".", "the repository's root")
	flag.Parse()
	for _, s := range series {
		if err := write(filepath.Join(*root, s.path), s); err != nil {
			fmt.Fprintln(os.Stderr, "genseries:", err)
			os.Exit(1)
		}
	}
}

func write(path string, s spec) error {
	start, err := time.Parse("2006-01-02", s.start)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "date,value")
	rng := rand.New(rand.NewPCG(s.seed, 0x67656e))
	level, ar := 0.0, 0.0
	for t := 0; t < s.days; t++ {
		d := start.AddDate(0, 0, t)
		level += s.drift * rng.NormFloat64()
		ar = s.phi*ar + s.noise*rng.NormFloat64()
		doy := 2 * math.Pi * float64(d.YearDay()-1) / 365.25
		z := s.base + level + s.weekly[d.Weekday()] + s.yearly*(-math.Cos(doy)+0.3*math.Sin(2*doy)) + ar
		if features.USHoliday(d) {
			z += s.holiday
		}
		if s.shiftAt > 0 {
			since := t - (s.days - s.shiftAt)
			z += s.shiftDepth * math.Min(1, math.Max(0, float64(since+1)/float64(s.shiftDays)))
		}
		if rng.Float64() < 0.004 { // a rare disruption: a storm, a strike
			z += math.Log(0.2 + 0.5*rng.Float64())
		}
		fmt.Fprintf(w, "%s,%d\n", d.Format("2006-01-02"), int64(math.Round(math.Exp(z))))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
