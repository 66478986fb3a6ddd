//go:build linux

package main

// Watching worker processes from /proc: which are alive, since when, and
// under which parent, so that a test can say that a dead agent's worker
// died with it and that no two workers ever ran at once.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// procPoll is how often the watcher looks at /proc.
const procPoll = 20 * time.Millisecond

// workerProc is one worker process as the watcher saw it.
type workerProc struct {
	pid, ppid, pgid int
	args            []string
	first, last     time.Time // first and last seen alive
	gone            bool      // seen dead (or a zombie) after being alive
}

// procWatch samples /proc for processes that are workers: the built
// kairoscope run as `kairoscope worker`, or a command line holding one of
// extra (a wrapper script).
type procWatch struct {
	bin   string
	extra []string
	stop  chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	procs   map[int]*workerProc
	most    int       // most workers (process groups) alive in one sample
	mostAt  time.Time // when
	mostPID []int
}

// watchWorkers starts watching until the test ends.
func watchWorkers(t *testing.T, extra ...string) *procWatch {
	t.Helper()
	bin, err := buildKairoscope()
	if err != nil {
		t.Fatal(err)
	}
	w := &procWatch{bin: bin, extra: extra, stop: make(chan struct{}), done: make(chan struct{}), procs: map[int]*workerProc{}}
	go w.run()
	t.Cleanup(func() { close(w.stop); <-w.done })
	return w
}

func (w *procWatch) run() {
	defer close(w.done)
	t := time.NewTicker(procPoll)
	defer t.Stop()
	for {
		w.sample()
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

func (w *procWatch) sample() {
	now := time.Now()
	ents, _ := os.ReadDir("/proc")
	alive := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args, ok := w.isWorker(pid)
		if !ok {
			continue
		}
		state, ppid, pgid, err := procStat(pid)
		if err != nil || state == "Z" || state == "X" {
			continue
		}
		alive[pid] = true
		w.mu.Lock()
		p := w.procs[pid]
		if p == nil {
			p = &workerProc{pid: pid, ppid: ppid, pgid: pgid, args: args, first: now}
			w.procs[pid] = p
		}
		p.last = now
		w.mu.Unlock()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var live []int
	groups := map[int]bool{} // a worker and what it started share a group
	for pid, p := range w.procs {
		if alive[pid] {
			live = append(live, pid)
			groups[p.pgid] = true
		} else {
			p.gone = true
		}
	}
	if len(groups) > w.most {
		slices.Sort(live)
		w.most, w.mostAt, w.mostPID = len(groups), now, live
	}
}

// isWorker reads pid's command line and says whether it is a worker.
func (w *procWatch) isWorker(pid int) ([]string, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return nil, false
	}
	args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
	if len(args) >= 2 && args[0] == w.bin && args[1] == "worker" {
		return args, true
	}
	for _, x := range w.extra {
		if slices.Contains(args, x) {
			return args, true
		}
	}
	return nil, false
}

// procStat reads a process's state, parent and process group.
func procStat(pid int) (state string, ppid, pgid int, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, 0, err
	}
	// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, 0, errors.New("bad stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return "", 0, 0, errors.New("bad stat")
	}
	ppid, _ = strconv.Atoi(f[1])
	pgid, _ = strconv.Atoi(f[2])
	return f[0], ppid, pgid, nil
}

// workers returns every worker seen so far, by first sight.
func (w *procWatch) workers() []workerProc {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []workerProc
	for _, p := range w.procs {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b workerProc) int { return a.first.Compare(b.first) })
	return out
}

// childrenOf returns the workers whose parent was pid when first seen.
func (w *procWatch) childrenOf(pid int) []workerProc {
	return slices.DeleteFunc(w.workers(), func(p workerProc) bool { return p.ppid != pid })
}

// alive returns the workers alive at the last sample.
func (w *procWatch) alive() []workerProc {
	return slices.DeleteFunc(w.workers(), func(p workerProc) bool { return p.gone })
}

// waitGone waits up to d until every process of procs has been seen dead,
// and returns how long that took after since (the last sighting of the
// last one to die).
func (w *procWatch) waitGone(t *testing.T, procs []workerProc, since time.Time, d time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var last time.Time
		all := true
		w.mu.Lock()
		for _, p := range procs {
			q := w.procs[p.pid]
			if q == nil || !q.gone {
				all = false
				break
			}
			if q.last.After(last) {
				last = q.last
			}
		}
		w.mu.Unlock()
		if all {
			return max(0, last.Sub(since))
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker processes %v still alive %v after %v", pids(procs), d, since.Format("15:04:05.000"))
		}
		time.Sleep(procPoll)
	}
}

// atMostOne fails if two workers (two process groups) were ever seen
// alive at once.
func (w *procWatch) atMostOne(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.most > 1 {
		var desc []string
		for _, pid := range w.mostPID {
			p := w.procs[pid]
			desc = append(desc, fmt.Sprintf("pid %d (parent %d, %v to %v)", pid, p.ppid, p.first.Format("15:04:05.000"), p.last.Format("15:04:05.000")))
		}
		t.Errorf("%d workers alive at once at %v: %s", w.most, w.mostAt.Format("15:04:05.000"), strings.Join(desc, "; "))
	}
}

func pids(procs []workerProc) []int {
	var out []int
	for _, p := range procs {
		out = append(out, p.pid)
	}
	return out
}

// groupMembers lists the live processes of process group pgid: a zombie
// is dead, but stays in its group until its new parent reaps it.
func groupMembers(pgid int) []int {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return nil
	}
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, _, g, err := procStat(pid); err == nil && g == pgid && state != "Z" && state != "X" {
			out = append(out, pid)
		}
	}
	return out
}

// waitGroupGone waits up to d until process group pgid has no live
// process, and fails if it still has.
func waitGroupGone(t *testing.T, pgid int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := groupMembers(pgid)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("process group %d still has processes %v after %v", pgid, left, d)
			return
		}
		time.Sleep(procPoll)
	}
}
