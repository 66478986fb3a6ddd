package worker

import (
	"bufio"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// maxLogLine is the longest stderr line relayed whole; longer ones are cut
// (see relayLogs).
const maxLogLine = 64 << 10

func (r *Runner) maxSilence() time.Duration {
	if r.MaxSilence == 0 {
		return DefaultMaxSilence
	}
	return r.MaxSilence
}

func (r *Runner) logLines() int {
	if r.LogLines == 0 {
		return DefaultLogLines
	}
	return r.LogLines
}

// silenceWatch stops a worker that writes nothing on stdout for limit:
// SIGTERM to its process group, SIGKILL after grace, as a cancel does.
type silenceWatch struct {
	limit time.Duration
	timer *time.Timer // nil: no limit
	shot  atomic.Bool
}

func (r *Runner) watchSilence(pid int, grace time.Duration) *silenceWatch {
	w := &silenceWatch{limit: r.maxSilence()}
	if w.limit < 0 {
		return w
	}
	w.timer = time.AfterFunc(w.limit, func() {
		w.shot.Store(true)
		time.AfterFunc(grace, func() { signalGroup(pid, syscall.SIGKILL) })
		signalGroup(pid, syscall.SIGTERM)
	})
	return w
}

// heard restarts the clock: the worker wrote a line.
func (w *silenceWatch) heard() {
	if w.timer != nil && !w.shot.Load() {
		w.timer.Reset(w.limit)
	}
}

// fired reports whether the worker was stopped for its silence.
func (w *silenceWatch) fired() bool { return w.shot.Load() }

func (w *silenceWatch) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// logGate admits at most perSecond lines a second (a token bucket of as
// many) and logs, once a second while it drops, how many it dropped.
type logGate struct {
	perSecond int
	log       zerolog.Logger
	tokens    float64
	last      time.Time
	dropped   int64 // since the last report
	reported  time.Time
}

func newLogGate(perSecond int, log zerolog.Logger) *logGate {
	return &logGate{perSecond: perSecond, log: log, tokens: float64(perSecond), last: time.Now()}
}

// admit reports whether the next line may be logged.
func (g *logGate) admit() bool {
	if g.perSecond < 0 {
		return true
	}
	now := time.Now()
	g.tokens = min(float64(g.perSecond), g.tokens+now.Sub(g.last).Seconds()*float64(g.perSecond))
	g.last = now
	if g.tokens >= 1 {
		g.tokens--
		return true
	}
	g.dropped++
	if now.Sub(g.reported) >= time.Second {
		g.report(now)
	}
	return false
}

func (g *logGate) report(now time.Time) {
	if g.dropped == 0 {
		return
	}
	g.log.Warn().Int64("dropped_lines", g.dropped).Int("limit_per_second", g.perSecond).
		Msg("worker stderr flood: lines not relayed")
	g.dropped, g.reported = 0, now
}

// close reports the lines dropped since the last report.
func (g *logGate) close() { g.report(time.Now()) }

// lineReader reads lines of at most max bytes; the rest of a longer line
// is read and thrown away, never buffered.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its newline, and how many bytes were
// cut from it. The final line needs no newline. It returns io.EOF (or the
// read error) once nothing is left.
func (l *lineReader) next() (line []byte, cut int64, err error) {
	l.buf = l.buf[:0]
	for {
		frag, err := l.br.ReadSlice('\n')
		if room := l.max - len(l.buf); room > 0 {
			l.buf = append(l.buf, frag[:min(len(frag), room)]...)
			cut += int64(len(frag) - min(len(frag), room))
		} else {
			cut += int64(len(frag))
		}
		switch {
		case err == nil:
			if len(l.buf) > 0 && l.buf[len(l.buf)-1] == '\n' {
				l.buf = l.buf[:len(l.buf)-1]
			} else {
				cut-- // the newline fell in the cut part
			}
			return l.buf, cut, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case len(l.buf) > 0 || cut > 0:
			return l.buf, cut, nil // a last line without newline; err again next time
		default:
			return nil, 0, err
		}
	}
}

// Output writes a worker's messages on its stdout, one JSON object a line,
// and the empty keepalive lines that tell the Runner a silent job is still
// making progress (a tune sends nothing while a trial trains). Safe for
// concurrent use.
type Output struct {
	mu sync.Mutex
	w  io.Writer
}

// NewOutput returns an Output writing to w (the worker's stdout).
func NewOutput(w io.Writer) *Output { return &Output{w: w} }

// Line writes msg, one JSON object without newline, and a newline.
func (o *Output) Line(msg []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.w.Write(append(msg, '\n'))
}

// KeepAlive writes an empty line every interval in which progressed
// reports progress, until done is closed. A job that stops progressing
// stops the keepalives, and the Runner's MaxSilence then stops it.
func (o *Output) KeepAlive(done <-chan struct{}, every time.Duration, progressed func() bool) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if progressed() {
				o.Line(nil)
			}
		}
	}
}

// KeepAliveEvery is how often a worker making progress writes a keepalive:
// far below any sane MaxSilence.
const KeepAliveEvery = 15 * time.Second
