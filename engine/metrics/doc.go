// Package metrics computes every number of the training schema exactly as
// the reference libraries do (scikit-learn, SciPy, statsmodels), plus the
// forecast scores (Gaussian CRPS, seasonal-naive scale). Golden values made by
// testdata/gen_golden.py pin them. Pure functions over float64 slices.
package metrics
