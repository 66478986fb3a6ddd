package ws

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/kairoscope/kairoscope/schema"
)

// checkCost refuses a run request whose estimated cost on its dataset
// exceeds MaxRunCost (schema.RunRequest.CheckCost): HTTP 400 naming the
// limit, before anything is queued.
func (s *Server) checkCost(req schema.RunRequest) error {
	info, err := s.datasets.Get(req.Dataset)
	if err != nil {
		return err // StartRun says what is wrong with the dataset
	}
	return req.CheckCost(info.Rows, info.OHLCV, s.cfg.MaxRunCost)
}

// jobRate bounds how fast one client (an IP address) starts jobs: runs
// (POST /api/runs) and new forecasts (/ws/predict; joining one under way
// is free). A token bucket per client of Config.RunBurst jobs, refilled
// at RunsPerMinute. Past it the client gets HTTP 429 with Retry-After.
// Without it one client could churn runs faster than anyone reads them,
// and pruning (KeepRuns) would push every other run's record and reports
// out of the log.
type jobRate struct {
	perMinute, burst int
	now              func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets is how many clients the limiter remembers before it forgets
// those whose bucket has refilled (and, if that is not enough, all).
const maxBuckets = 4096

func newJobRate(perMinute, burst int) *jobRate {
	return &jobRate{perMinute: perMinute, burst: burst, now: time.Now, buckets: map[string]*bucket{}}
}

// take spends one job of client's budget, or says how long until one is
// back.
func (l *jobRate) take(client string) (ok bool, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	rate := float64(l.perMinute) / 60 // a second
	refill := func(b *bucket) {
		b.tokens = math.Min(float64(l.burst), b.tokens+now.Sub(b.last).Seconds()*rate)
		b.last = now
	}
	b := l.buckets[client]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			for k, o := range l.buckets {
				if refill(o); o.tokens >= float64(l.burst) {
					delete(l.buckets, k)
				}
			}
			if len(l.buckets) >= maxBuckets {
				clear(l.buckets) // that many clients at once: bound the memory, forget them all
			}
		}
		b = &bucket{tokens: float64(l.burst), last: now}
		l.buckets[client] = b
	}
	refill(b)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// clientOf is the address rate limits count by: the peer's IP (a proxy in
// front counts as one client).
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// allowJob spends a job of r's client, or answers 429 and returns false.
func (s *Server) allowJob(w http.ResponseWriter, r *http.Request, what string) bool {
	ok, retry := s.rate.take(clientOf(r))
	if ok {
		return true
	}
	s.refuse("rate")
	secs := int(math.Ceil(retry.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many %s from %s: a client may start %d jobs at once and %d a minute (--run-burst, --runs-per-minute); try again in %d s",
		what, clientOf(r), s.cfg.RunBurst, s.cfg.RunsPerMinute, secs))
	return false
}
