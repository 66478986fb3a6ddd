package runlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Reap repairs runs whose job message is gone while the run still needs an
// agent: a queued run whose submitter died between its record and its
// message, or a running one whose lease ran out long ago and whose message
// a late acknowledgement from a zombie agent deleted (scale-out notes,
// pitfall 1). It queues their jobs again, so a run is never silently lost.
// Any replica may call it: every step is idempotent. recs may be stale (a
// replica's mirror): a run is read again before anything is done for it.
func (l *Log) Reap(ctx context.Context, recs []Record) {
	now := time.Now()
	stale := func(r Record) bool {
		return r.State == StateQueued && now.Sub(r.Created) > l.cfg.Lease ||
			(r.State == StateRunning || r.State == StateCancelling) && r.LeaseUntil != nil && now.Sub(*r.LeaseUntil) > l.cfg.Lease
	}
	for _, r := range recs {
		if r.State == StateCancelling && stale(r) {
			l.endCancelled(ctx, r, stale)
			continue
		}
		if !stale(r) {
			continue
		}
		_, err := l.jobs.GetLastMsgForSubject(ctx, jobSubject(r.Lane, r.Class, r.ID))
		if err == nil || !errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // still queued (or unknown): the consumers will get to it
		}
		if cur, _, err := l.Get(ctx, r.ID); err != nil || !stale(cur) {
			continue // it moved on since recs was read
		} else {
			r = cur
		}
		if err := l.enqueue(ctx, r, fmt.Sprintf("reap%d", r.Attempt)); err != nil {
			l.log.Warn().Err(err).Str("run_id", r.ID).Msg("runlog: requeueing a lost job")
			continue
		}
		l.log.Warn().Str("run_id", r.ID).Str("state", r.State).Msg("runlog: requeued a run whose job message was lost")
	}
}

// endCancelled ends a run being cancelled whose agent is gone: no agent
// may be left to take its job again and see the cancel. stale says, of
// the record as it stands, that its lease has run out long enough.
func (l *Log) endCancelled(ctx context.Context, r Record, stale func(Record) bool) {
	text := fmt.Sprintf("run cancelled; attempt %d lost its agent %s", r.Attempt, r.Agent)
	rec, _, err := l.update(ctx, r.ID, func(cur *Record) error {
		if cur.State != StateCancelling || cur.Attempt != r.Attempt || !stale(*cur) {
			return errNoChange // r was stale: its agent renewed, or another ended it
		}
		now := time.Now().UTC()
		cur.State, cur.Ended, cur.Error, cur.LeaseUntil = StateCancelled, &now, text, nil
		cur.Attempt++ // the ending is written as a new attempt: a zombie holder is fenced
		return nil
	})
	if err != nil || rec.State != StateCancelled || rec.Attempt != r.Attempt+1 {
		return
	}
	l.dropJob(ctx, rec)
	if err := l.writeEnding(ctx, rec, text); err != nil {
		l.log.Warn().Err(err).Str("run_id", r.ID).Msg("runlog: writing a cancelled run's ending")
	}
	l.log.Warn().Str("run_id", r.ID).Msg(text)
}

// Prune forgets the ended runs beyond Config.KeepRuns, oldest first: their
// record, their log and their reports. Any replica may call it.
func (l *Log) Prune(ctx context.Context, recs []Record) {
	var ended []Record
	for _, r := range recs {
		if Ended(r.State) && r.Ended != nil {
			ended = append(ended, r)
		}
	}
	if len(ended) <= l.cfg.KeepRuns {
		return
	}
	slices.SortFunc(ended, func(a, b Record) int { return a.Ended.Compare(*b.Ended) })
	for _, r := range ended[:len(ended)-l.cfg.KeepRuns] {
		if err := l.events.Purge(ctx, jetstream.WithPurgeSubject(eventSubject(r.ID))); err != nil {
			l.log.Warn().Err(err).Str("run_id", r.ID).Msg("runlog: pruning a run's log")
			continue
		}
		l.DeleteBlobs(ctx, ReportBlob(r.ID, ""))
		l.runs.Purge(ctx, r.ID)
	}
}
