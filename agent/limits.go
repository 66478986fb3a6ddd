package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/kairoscope/kairoscope/runlog"
)

// Defaults of the limits in Config.
const (
	DefaultMaxRunTime      = 6 * time.Hour
	DefaultMaxForecastTime = 10 * time.Minute
	DefaultMaxJobBytes     = 1 << 30
)

// limitError stops a worker that went past one of the agent's limits; its
// text is the run's training_error (or the forecast's error).
type limitError struct{ text string }

func (e *limitError) Error() string { return e.text }

// timeLimit is the wall-clock limit of one attempt of a job of lane, and
// the error that ends a job past it; 0 when there is none.
func (a *Agent) timeLimit(lane string) (time.Duration, error) {
	d, what, flag := a.cfg.MaxRunTime, "run", "--max-run-time"
	def := DefaultMaxRunTime
	if lane == runlog.LaneForecast {
		d, what, flag, def = a.cfg.MaxForecastTime, "forecast", "--max-forecast-time", DefaultMaxForecastTime
	}
	switch {
	case d == 0:
		d = def
	case d < 0:
		return 0, nil
	}
	return d, &limitError{fmt.Sprintf("%s stopped after %v, the wall-clock limit of a %s (%s on its agent); ask for fewer epochs, folds or trials, or a smaller network",
		what, d, what, flag)}
}

// byteLimit is how many bytes of messages one attempt may append, and the
// error that ends a job past it; 0 when there is none.
func (a *Agent) byteLimit() (int64, error) {
	n := a.cfg.MaxJobBytes
	switch {
	case n == 0:
		n = DefaultMaxJobBytes
	case n < 0:
		return 0, nil
	}
	return n, &limitError{fmt.Sprintf("the worker wrote more than %d bytes of messages, the limit of a job (--max-job-bytes on its agent): stopped it", n)}
}

// asLimit returns the limitError that cause is, if any.
func asLimit(cause error) (*limitError, bool) {
	var le *limitError
	ok := errors.As(cause, &le)
	return le, ok
}

func isLimit(cause error) bool { _, ok := asLimit(cause); return ok }
