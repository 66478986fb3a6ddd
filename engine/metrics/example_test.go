package metrics_test

import (
	"fmt"

	"github.com/kairoscope/kairoscope/engine/metrics"
)

func ExampleROCAUC() {
	// scikit-learn's roc_auc_score docstring data, plus a tie: the positive
	// at 0.4 ties a negative and earns half credit.
	p := []float64{0.1, 0.4, 0.35, 0.8, 0.4}
	up := []bool{false, false, true, true, true}
	fmt.Printf("%.4f\n", metrics.ROCAUC(p, up))
	// One class only: undefined, as scikit-learn raises.
	fmt.Println(metrics.ROCAUC([]float64{0.2, 0.7}, []bool{true, true}))
	// Output:
	// 0.7500
	// NaN
}

func ExampleECE() {
	// Bin [0.2, 0.3) says 25 % and sees 1 of 4 up; bin [0.9, 1] says 95 %
	// and sees 2 of 4 up: ECE = ½·0 + ½·0.45.
	p := []float64{0.25, 0.25, 0.25, 0.25, 0.95, 0.95, 0.95, 0.95}
	up := []bool{true, false, false, false, true, true, false, false}
	fmt.Printf("%.3f\n", metrics.ECE(p, up, 10))
	// Output: 0.225
}

func ExampleBCE() {
	// A single class is fine (log_loss with labels=[0, 1]); p = 1 for a
	// "down" row is clipped to 1 − 2⁻⁵² instead of giving +Inf.
	fmt.Printf("%.4f\n", metrics.BCE([]float64{0.9, 0.8}, []bool{true, true}))
	fmt.Printf("%.4f\n", metrics.BCE([]float64{1}, []bool{false}))
	// Output:
	// 0.1643
	// 36.0437
}

func ExampleMincerZarnowitz() {
	mu := []float64{-2, -1, 0, 1, 2}
	y := []float64{-1.9, -1.2, 0.2, 0.8, 2.1} // mu plus noise orthogonal to (1, mu)
	a, b, p := metrics.MincerZarnowitz(y, mu)
	fmt.Printf("intercept %.3f slope %.3f p %.3f\n", a, b, p)
	// Output: intercept 0.000 slope 1.000 p 1.000
}

func ExampleKSNormP() {
	// Five evenly spread normal quantiles fit N(0,1) as well as five
	// points can; the same points shifted by 1.5 do not.
	z := []float64{-1.2816, -0.5244, 0, 0.5244, 1.2816}
	fmt.Printf("%.4f\n", metrics.KSNormP(z))
	for i := range z {
		z[i] += 1.5
	}
	fmt.Printf("%.4f\n", metrics.KSNormP(z))
	// Output:
	// 1.0000
	// 0.0176
}

func ExampleGaussianCRPS() {
	fmt.Printf("%.4f\n", metrics.GaussianCRPS(0, 0, 1)) // (√2 − 1)/√π
	fmt.Printf("%.4f\n", metrics.GaussianCRPS(3, 0, 1))
	fmt.Printf("%.4f\n", metrics.GaussianCRPS(3, 0, 0)) // point forecast: |y − mu|
	// Output:
	// 0.2337
	// 2.4366
	// 3.0000
}

func ExampleSeasonalNaiveMAE() {
	// Hourly data with a daily cycle would use period 24; here period 2.
	x := []float64{10, 20, 11, 19, 12, 21}
	fmt.Printf("%.4f\n", metrics.SeasonalNaiveMAE(x, 2))
	// Output: 1.2500
}
