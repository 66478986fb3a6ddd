// Package metrics computes every number of the training schema exactly as
// the reference libraries do (scikit-learn, SciPy, statsmodels), plus the
// forecast scores (Gaussian CRPS, seasonal-naive scale). Golden values made by
// testdata/gen_golden.py pin them. Pure functions over float64 slices.
//
// Each metric names the call it reproduces, and follows that library's
// order of floating-point operations where it fixes the rounding: means are
// NumPy's blocked pairwise sums (npSum), the normal CDF is arranged as cephes
// ndtr, integer powers are correctly rounded like C's pow. Measured against
// the golden file most metrics agree bit for bit and the rest to 1e-12
// relative or better; golden_test.go states each tolerance and why.
//
//	ROCAUC            sklearn.metrics.roc_auc_score
//	DirAcc            mean((mu > 0) == (y > 0))
//	ECE               equal-width bins on [0, 1]
//	Brier             sklearn.metrics.brier_score_loss
//	BCE               sklearn.metrics.log_loss (1.2.1, labels=[0, 1])
//	GaussianNLL       mean(−scipy.stats.norm.logpdf)
//	MincerZarnowitz   statsmodels OLS + f_test("const = 0, x1 = 1")
//	KSNormP           scipy.stats.kstest(z, "norm").pvalue (SciPy 1.10.1)
//	Coverage          mean(lo <= y <= hi)
//	MeanWidth         mean(hi − lo)
//	GaussianCRPS      closed form of ∫(F − 1{x ≥ y})²
//	SeasonalNaiveMAE  mean |x_t − x_{t−period}|
//
// Contracts shared by all of them:
//   - Slices that must have equal length and do not are a programmer error
//     (the engine passes columns of one fold): the function panics with a
//     message naming it. So do bins < 1 and period < 1.
//   - Where the reference raises on data (one class for ROC AUC, p outside
//     [0, 1] for the Brier score, non-finite scores, empty input) or returns
//     nan, the function returns NaN. NaN is the "undefined" of the schema.
//   - Functions are pure, allocate only scratch space and are safe for
//     concurrent use.
//
// The package imports only the standard library and gonum (mathext, for the
// incomplete beta function SciPy's F distribution uses). It must not import
// other kairoscope packages, so that training, backtests and the CLI can all
// call it.
package metrics
