package runlog

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/schema"
)

// Taker takes jobs from the queues for one agent process.
type Taker struct {
	l           *Log
	agent       string
	incarnation string
	cons        map[string][]jetstream.Consumer // by lane, in the order tried
	wake        map[string]chan struct{}        // by lane: a job was queued
	subs        []*nats.Subscription
}

// Taker returns a taker for agent (its stable name) in this incarnation
// (a fresh ID per process), taking the given classes in that order of
// preference, e.g. gpu, any, cpu for a GPU agent.
func (l *Log) Taker(ctx context.Context, agent, incarnation string, classes []string) (*Taker, error) {
	t := &Taker{l: l, agent: agent, incarnation: incarnation, cons: map[string][]jetstream.Consumer{}, wake: map[string]chan struct{}{}}
	for _, lane := range Lanes {
		for _, class := range classes {
			c, err := l.jobs.Consumer(ctx, consumerName(lane, class))
			if err != nil {
				return nil, fmt.Errorf("runlog: the %s/%s queue: %w", lane, class, err)
			}
			t.cons[lane] = append(t.cons[lane], c)
		}
		ch := make(chan struct{}, 1)
		t.wake[lane] = ch
		sub, err := l.nc.Subscribe(wakePrefix+lane, func(*nats.Msg) {
			select {
			case ch <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return nil, err
		}
		t.subs = append(t.subs, sub)
	}
	return t, nil
}

// Close stops listening for new jobs.
func (t *Taker) Close() {
	for _, s := range t.subs {
		s.Unsubscribe()
	}
}

// takePoll is how often an idle slot looks at its queues when no wake-up
// comes (a wake-up is a core NATS message, which may be lost).
const takePoll = time.Second

// Take waits until it holds a job of lane, or ctx is done.
func (t *Taker) Take(ctx context.Context, lane string) (*Job, error) {
	for {
		for _, c := range t.cons[lane] {
			// One message at a time, never a prefetch: a buffered message's
			// AckWait would run while it waits (scale-out notes, pitfall 4).
			batch, err := c.FetchNoWait(1)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				t.l.log.Warn().Err(err).Str("lane", lane).Msg("runlog: fetching a job")
				continue
			}
			for m := range batch.Messages() {
				if j := t.claim(ctx, m); j != nil {
					return j, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.wake[lane]:
		case <-time.After(takePoll):
		}
	}
}

// claim turns a delivered job message into a held job, or settles it: a
// job of an ended run is acknowledged away, one whose holder's lease still
// runs is handed back for later, one whose holder is lost becomes a new
// attempt (or fails the run past MaxRetries).
func (t *Taker) claim(ctx context.Context, m jetstream.Msg) *Job {
	var jm jobMsg
	if json.Unmarshal(m.Data(), &jm) != nil || !ValidID(jm.RunID) {
		t.l.log.Error().Str("subject", m.Subject()).Msg("runlog: dropped a malformed job message")
		m.Term()
		return nil
	}
	log := t.l.log.With().Str("run_id", jm.RunID).Logger()
	rec, rev, err := t.l.Get(ctx, jm.RunID)
	if errors.Is(err, ErrUnknownRun) {
		m.Term()
		return nil
	}
	if err != nil {
		log.Warn().Err(err).Msg("runlog: reading a job's record")
		m.NakWithDelay(time.Second)
		return nil
	}
	now := time.Now().UTC()
	cancelling := rec.State == StateCancelling
	switch {
	case Ended(rec.State):
		m.Ack()
		return nil
	case rec.State == StateRunning || rec.State == StateCancelling:
		if !rec.leaseExpired(now) {
			// A live holder (or a redelivery racing its renewal): look again
			// once its lease would have run out.
			m.NakWithDelay(rec.LeaseUntil.Sub(now) + 100*time.Millisecond)
			return nil
		}
		lost := fmt.Sprintf("attempt %d lost its agent %s (lease expired at %s)", rec.Attempt, rec.Agent, rec.LeaseUntil.Format(time.RFC3339))
		if rec.State == StateCancelling || rec.Retries >= rec.MaxRetries {
			state, text := StateFailed, fmt.Sprintf("%s; gave up after %d retries", lost, rec.Retries)
			if rec.State == StateCancelling {
				state, text = StateCancelled, "run cancelled; "+lost
			}
			t.end(ctx, m, rec, rev, state, text, log)
			return nil
		}
		rec.Retries++
		rec.Notes = append(rec.Notes, lost)
	}
	rec.Attempt++
	rec.State = StateRunning
	rec.Agent, rec.Incarnation = t.agent, t.incarnation
	lease := now.Add(t.l.cfg.Lease)
	rec.LeaseUntil, rec.Started, rec.Ended = &lease, &now, nil
	rev, err = t.l.put(ctx, rec, rev)
	if err != nil {
		// Someone changed the record first (a cancel, another agent):
		// leave the message for the next look.
		log.Debug().Err(err).Msg("runlog: lost the race for a job")
		m.NakWithDelay(200 * time.Millisecond)
		return nil
	}
	w, err := t.l.Writer(ctx, rec.ID, rec.Attempt)
	if err != nil {
		state, text := StateFailed, err.Error()
		if errors.Is(err, ErrEnded) {
			// An earlier attempt's ending landed but its record did not (its
			// agent died, or lost its lease, in between): the log says how
			// the run ended.
			state, text, rec.SummaryPath, rec.Messages = t.l.loggedEnding(ctx, rec.ID, cancelling)
			log.Warn().Str("state", state).Msg("runlog: a taken job's log had ended; recording its end")
		} else {
			log.Error().Err(err).Msg("runlog: opening a taken job's log")
		}
		t.finishRecord(ctx, rec, rev, state, text)
		m.Term()
		return nil
	}
	return &Job{l: t.l, msg: m, Rec: rec, rev: rev, w: w, id: rec.ID}
}

// end fails or cancels a run no agent holds any more: its record, then
// its log's ending, as a new attempt so a zombie holder is fenced, then
// the job message.
func (t *Taker) end(ctx context.Context, m jetstream.Msg, rec Record, rev uint64, state, text string, log zerolog.Logger) {
	now := time.Now().UTC()
	rec.State, rec.Ended, rec.Error, rec.LeaseUntil = state, &now, text, nil
	rec.Attempt++
	if _, err := t.l.put(ctx, rec, rev); err != nil {
		m.NakWithDelay(200 * time.Millisecond)
		return
	}
	if err := t.l.writeEnding(ctx, rec, text); err != nil {
		log.Warn().Err(err).Msg("runlog: writing the ending of a run whose agent was lost")
	}
	log.Warn().Str("state", state).Msg(text)
	m.Term()
}

// loggedEnding reads how run id's complete log ends: the state its
// terminal message means (a training_error or a forecast's error is a
// failure, or the cancellation of a run being cancelled), the error, the
// summary path and the last seq.
func (l *Log) loggedEnding(ctx context.Context, id string, cancelling bool) (state, text, summary string, seq uint64) {
	m, err := l.events.GetLastMsgForSubject(ctx, eventSubject(id))
	if err != nil {
		return StateFailed, fmt.Sprintf("its log ended, but reading how: %v", err), "", 0
	}
	seq, _ = strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
	var end struct {
		Type        string `json:"type"`
		Status      string `json:"status"`
		Error       string `json:"error"`
		Message     string `json:"message"`
		SummaryPath string `json:"summary_path"`
	}
	json.Unmarshal(m.Data, &end)
	switch {
	case end.Type == schema.TypeTrainingComplete || end.Status == schema.StatusOutput:
		return StateCompleted, "", end.SummaryPath, seq
	case cancelling:
		return StateCancelled, cmp.Or(end.Error, end.Message), "", seq
	}
	return StateFailed, cmp.Or(end.Error, end.Message, "the run's last message says it failed"), "", seq
}

// finishRecord writes rec's final state if rev is still current.
func (t *Taker) finishRecord(ctx context.Context, rec Record, rev uint64, state, text string) {
	now := time.Now().UTC()
	rec.State, rec.Ended, rec.Error, rec.LeaseUntil = state, &now, text, nil
	t.l.put(ctx, rec, rev)
}

// Job is a job an agent holds: its record as the agent last wrote it, and
// the writer of its attempt.
type Job struct {
	l   *Log
	msg jetstream.Msg
	// Rec is the record as the job's holder last wrote it; Renew, Finish
	// and Release replace it, so read it only from their goroutine.
	Rec Record
	rev uint64
	w   *Writer
	id  string
}

// ID is the job's run ID, safe from any goroutine.
func (j *Job) ID() string { return j.id }

// Seq is the seq of the last message the job's attempt wrote or found.
func (j *Job) Seq() uint64 { return j.w.Seq() }

// Append adds a message to the job's log (see Writer.Append); ErrFenced
// means another attempt holds the run: stop the worker, write nothing more.
func (j *Job) Append(ctx context.Context, body []byte, terminal bool) error {
	return j.w.Append(ctx, body, terminal)
}

// Renew extends the job's lease and its message's ack deadline. It reports
// whether the run is being cancelled, and ErrFenced when the run is no
// longer this attempt's (its lease ran out and another took it, or it
// ended).
func (j *Job) Renew(ctx context.Context) (cancelling bool, err error) {
	// Confirmed, unlike InProgress: the server answers a +WPI that has a
	// reply subject. The lease below is what fences; this only keeps
	// JetStream from handing the job out again meanwhile.
	if _, err := j.l.nc.RequestWithContext(ctx, j.msg.Reply(), []byte("+WPI")); err != nil {
		j.l.log.Debug().Err(err).Str("run_id", j.Rec.ID).Msg("runlog: +WPI")
	}
	for try := 0; ; try++ {
		rec := j.Rec
		lease := time.Now().UTC().Add(j.l.cfg.Lease)
		rec.LeaseUntil = &lease
		rev, err := j.l.put(ctx, rec, j.rev)
		if err == nil {
			j.Rec, j.rev = rec, rev
			return rec.State == StateCancelling, nil
		}
		if !conflict(err) || try > 10 {
			return false, fmt.Errorf("runlog: renewing %s: %w", j.Rec.ID, err)
		}
		if err := j.reread(ctx); err != nil {
			return false, err
		}
	}
}

// reread takes up the record another writer changed, if the run is still
// this attempt's (a cancel marks it cancelling), else fails with ErrFenced.
func (j *Job) reread(ctx context.Context) error {
	cur, rev, err := j.l.Get(ctx, j.Rec.ID)
	if err != nil {
		return err
	}
	if cur.Attempt != j.Rec.Attempt || cur.Incarnation != j.Rec.Incarnation ||
		(cur.State != StateRunning && cur.State != StateCancelling) {
		return fmt.Errorf("%w: %s is %s, attempt %d of %s", ErrFenced, cur.ID, cur.State, cur.Attempt, cur.Agent)
	}
	j.Rec, j.rev = cur, rev
	return nil
}

// Finish records the job's end (completed, failed or cancelled) and
// removes its message from the queue. It must come after the terminal
// message is in the log. ErrFenced means the run is no longer this
// attempt's: nothing was written, nothing acknowledged.
func (j *Job) Finish(ctx context.Context, state, errText, summaryPath string) error {
	for try := 0; ; try++ {
		rec := j.Rec
		now := time.Now().UTC()
		rec.State, rec.Ended, rec.Error, rec.SummaryPath, rec.LeaseUntil = state, &now, errText, summaryPath, nil
		rec.Messages = j.w.Seq()
		rev, err := j.l.put(ctx, rec, j.rev)
		if err == nil {
			j.Rec, j.rev = rec, rev
			break
		}
		if !conflict(err) || try > 10 {
			return fmt.Errorf("runlog: finishing %s: %w", j.Rec.ID, err)
		}
		if err := j.reread(ctx); err != nil {
			return err
		}
	}
	// After the record: an acknowledgement of a job this attempt no longer
	// holds would delete another attempt's job (scale-out notes, pitfall 1).
	if state == StateCancelled {
		return j.msg.Term()
	}
	return j.msg.DoubleAck(ctx)
}

// Release hands the job back to the queue, unfinished, for another attempt
// (the agent is stopping): the record goes back to queued with note added.
// A run being cancelled is cancelled instead, with its ending written.
func (j *Job) Release(ctx context.Context, note string) error {
	for try := 0; ; try++ {
		if j.Rec.State == StateCancelling {
			if err := j.Append(ctx, EndingMessage(j.Rec.Lane, "run cancelled"), true); err != nil {
				return err
			}
			return j.Finish(ctx, StateCancelled, "run cancelled", "")
		}
		rec := j.Rec
		rec.State, rec.Agent, rec.Incarnation, rec.LeaseUntil, rec.Started = StateQueued, "", "", nil, nil
		rec.Notes = append(rec.Notes, note)
		rev, err := j.l.put(ctx, rec, j.rev)
		if err == nil {
			j.Rec, j.rev = rec, rev
			err := j.msg.Nak()
			j.l.nc.Publish(wakePrefix+rec.Lane, nil) // another agent looks now, not at its next poll
			return err
		}
		if !conflict(err) || try > 10 {
			return fmt.Errorf("runlog: releasing %s: %w", j.Rec.ID, err)
		}
		if err := j.reread(ctx); err != nil {
			return err
		}
	}
}

// Reclaim expires the leases this agent's earlier incarnations still hold
// (their process is gone: it restarted) and queues their jobs again at
// once, rather than after the lease and AckWait run out.
func (t *Taker) Reclaim(ctx context.Context, recs []Record) {
	for _, r := range recs {
		if r.Agent != t.agent || r.Incarnation == t.incarnation || (r.State != StateRunning && r.State != StateCancelling) {
			continue
		}
		rec, _, err := t.l.update(ctx, r.ID, func(cur *Record) error {
			if cur.Agent != t.agent || cur.Incarnation != r.Incarnation || (cur.State != StateRunning && cur.State != StateCancelling) {
				return errNoChange
			}
			past := time.Now().UTC().Add(-time.Millisecond)
			cur.LeaseUntil = &past
			return nil
		})
		if err != nil || rec.Incarnation != r.Incarnation {
			continue
		}
		// The old delivery would wait out AckWait: replace the message.
		t.l.dropJob(ctx, rec)
		if err := t.l.enqueue(ctx, rec, fmt.Sprintf("reclaim%d", rec.Attempt)); err != nil {
			t.l.log.Warn().Err(err).Str("run_id", rec.ID).Msg("runlog: requeueing a job of an earlier incarnation")
		}
		t.l.log.Info().Str("run_id", rec.ID).Int("attempt", rec.Attempt).Msg("runlog: reclaimed a job of this agent's earlier process")
	}
}
