package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// command is one subcommand: its one-line summary and its entry point.
type command struct {
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what every command gets: its streams and a logger.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            zerolog.Logger
}

// commands is a function, not a variable: the commands' usage texts refer
// back to the table.
func commands() map[string]command {
	return map[string]command{
		"train":    {"cross-validate the model on a CSV series and write reports", runTrain},
		"predict":  {"train on a whole series and forecast the next days", runPredict},
		"backtest": {"score the forecast from rolling origins (sCRPS, coverage per horizon)", runBacktest},
		"tune":     {"search lr, hidden widths and batch size by cross-validated random search", runTune},
		"serve":    {"serve the training hub (/ws), the prediction pipeline (/ws/predict) and the REST API", runServe},
		"agent":    {"take jobs from a NATS cluster's queues and run them in workers on this machine", runAgent},
		"worker":   {"run one job spec from stdin, messages as JSON lines on stdout (started by an agent)", runWorker},
	}
}

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// Run parses args and runs one subcommand.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return usageError{errors.New("no command given")}
		}
		return flag.ErrHelp
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		usage(stderr)
		return usageError{fmt.Errorf("unknown command %q", args[0])}
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, log: newLogger(stderr)}
	return cmd.run(ctx, e, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Kairoscope trains a probabilistic time-series forecaster (mu, sigma, p_up).")
	fmt.Fprintln(w, "\nUsage: kairoscope <command> [flags]\n\nCommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'kairoscope <command> --help' for its flags.")
}

// newLogger writes JSON logs, or readable ones when stderr is a terminal.
func newLogger(w io.Writer) zerolog.Logger {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05"}
	}
	return zerolog.New(w).With().Timestamp().Logger()
}

// newFlags makes a flag set whose --help prints the summary and the flags.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: kairoscope %s %s\n\n%s\n\nFlags:\n", name, synopsis, commands()[name].summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, turning flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))}
	}
	return nil
}

// intList parses "64,64".
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var v int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &v); err != nil || v < 1 {
			return nil, fmt.Errorf("want positive integers separated by commas, got %q", s)
		}
		out = append(out, v)
	}
	return out, nil
}
