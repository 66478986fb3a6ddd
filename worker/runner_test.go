package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/schema"
)

// The test binary doubles as a fake worker: with FAKE_WORKER set it reads a
// spec and behaves as the variable says.
func TestMain(m *testing.M) {
	if mode := os.Getenv("FAKE_WORKER"); mode != "" {
		fakeWorker(mode)
		return
	}
	os.Exit(m.Run())
}

func fakeWorker(mode string) {
	spec, err := Open(os.Stdin, func(why string) {
		fmt.Fprintln(os.Stderr, `{"level":"error","message":"orphaned","error":`+strconv.Quote(why)+`}`)
		os.Exit(ExitOrphaned)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, `{"level":"error","message":"bad spec","error":"`+err.Error()+`"}`)
		os.Exit(1)
	}
	switch mode {
	case "ok":
		fmt.Printf(`{"type":"training_start","fallback_reason":%q}`+"\n", spec.FallbackReason)
		fmt.Println(`{"type":"epoch_metrics","epoch":0}`)
		fmt.Println(`{"type":"training_complete"}`)
	case "crash":
		fmt.Println(`{"type":"training_start"}`)
		panic("boom")
	case "garbage":
		fmt.Println(`{"type":"training_start"}`)
		fmt.Println("hello")
		time.Sleep(time.Minute)
	case "hang":
		fmt.Println(`{"type":"training_start"}`)
		time.Sleep(time.Minute)
	case "orphan": // what a worker whose server went quiet does
		fmt.Println(`{"type":"training_start"}`)
		os.Exit(ExitOrphaned)
	case "toeof": // reads stdin to its end first, as json.load(sys.stdin) does
		if _, err := io.ReadAll(os.Stdin); err != nil {
			os.Exit(1)
		}
		fmt.Println(`{"type":"training_complete"}`)
	case "slow": // trains for a second, writing nothing in between
		fmt.Println(`{"type":"training_start"}`)
		time.Sleep(time.Second)
		fmt.Println(`{"type":"training_complete"}`)
	case "nodevice": // what gorgonia.org/cu's init does without a GPU: a line on stdout, exit 1
		fmt.Println(`Error in initialization, please refer to "https://docs.nvidia.com/cuda/cuda-driver-api/group__CUDA__INITIALIZE.html" for details on: NoDevice`)
		os.Exit(1)
	case "failed":
		fmt.Println(`{"type":"training_error","error":"data.csv:3: bad number"}`)
		os.Exit(1)
	default:
		limitWorker(mode) // limits_test.go
	}
}

func fake(device, mode string) Command {
	return Command{Device: device, Path: os.Args[0], Env: []string{"FAKE_WORKER=" + mode}}
}

func runner(cpu string, gpu string) *Runner {
	r := &Runner{CPU: fake(DeviceCPU, cpu), Log: zerolog.Nop(), KillGrace: 200 * time.Millisecond}
	if gpu != "" {
		g := fake(DeviceGPU, gpu)
		r.GPU = &g
	}
	return r
}

var spec = Spec{Run: &schema.RunRequest{Dataset: "bike"}}

func collect(t *testing.T, r *Runner, ctx context.Context, device string) ([]map[string]any, error) {
	t.Helper()
	var msgs []map[string]any
	err := r.Run(ctx, spec, device, func(b []byte) {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("emitted %q", b)
		}
		msgs = append(msgs, m)
	})
	return msgs, err
}

func TestRunRelaysMessages(t *testing.T) {
	msgs, err := collect(t, runner("ok", ""), context.Background(), DeviceAuto)
	if err != nil || len(msgs) != 3 || msgs[2]["type"] != "training_complete" {
		t.Fatalf("%v %v", msgs, err)
	}
}

func TestCrashIsAnExitError(t *testing.T) {
	msgs, err := collect(t, runner("crash", ""), context.Background(), DeviceCPU)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Status != 2 || !strings.Contains(ee.Stderr, "boom") || len(msgs) != 1 {
		t.Fatalf("msgs %v err %v", msgs, err)
	}
}

func TestGarbageOutputKillsTheWorker(t *testing.T) {
	start := time.Now()
	_, err := collect(t, runner("garbage", ""), context.Background(), DeviceCPU)
	var ee *ExitError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "not a JSON object") || time.Since(start) > 10*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

func TestCancelKillsAHungWorker(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	var n int
	err := runner("hang", "").Run(ctx, spec, DeviceCPU, func([]byte) { n++; cancel() })
	if !errors.Is(err, context.Canceled) || n != 1 || time.Since(start) > 10*time.Second {
		t.Fatalf("err %v, %d messages, %v", err, n, time.Since(start))
	}
}

func TestAutoFallsBackWhenTheGPUWorkerCannotStart(t *testing.T) {
	msgs, err := collect(t, runner("ok", "nodevice"), context.Background(), DeviceAuto)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("%v %v", msgs, err)
	}
	if reason, _ := msgs[0]["fallback_reason"].(string); !strings.Contains(reason, "NoDevice") || !strings.HasPrefix(reason, "gpu worker") {
		t.Errorf("fallback_reason %q", reason)
	}
}

func TestGPUNeverFallsBack(t *testing.T) {
	if _, err := collect(t, runner("ok", "nodevice"), context.Background(), DeviceGPU); err == nil || !strings.Contains(err.Error(), "NoDevice") {
		t.Errorf("err %v", err)
	}
	if _, err := collect(t, runner("ok", ""), context.Background(), DeviceGPU); !errors.Is(err, ErrNoGPUWorker) {
		t.Errorf("err %v", err)
	}
}

// A GPU worker that fails after it started (a job error) is not retried on
// the CPU: the job's own error stands.
func TestNoFallbackAfterTheFirstMessage(t *testing.T) {
	msgs, err := collect(t, runner("ok", "failed"), context.Background(), DeviceAuto)
	if err == nil || len(msgs) != 1 || msgs[0]["type"] != "training_error" {
		t.Fatalf("%v %v", msgs, err)
	}
}

func TestReadSpecRejects(t *testing.T) {
	for _, in := range []string{`{}`, `{"run":{}}`, `{"run":{"dataset":"bike","kind":"x"}}`, `{"run":{"dataset":"bike","folds":99}}`,
		`{"run":{"dataset":"bike"},"forecast":{"dataset":"bike"}}`, `{"forecast":{}}`, `{"run":{"dataset":"bike"},"nope":1}`, `[`,
		`{"run":{"dataset":"bike"},"data":{"name":"sp500","hash":"` + strings.Repeat("a", 64) + `"}}`,
		`{"forecast":{"dataset":"bike"},"data":{"name":"bike","hash":"ABC"}}`,
		`{"forecast":{"dataset":"bike"},"data":{"name":"bike","hash":"` + strings.Repeat("A", 64) + `"}}`} {
		if _, err := ReadSpec(strings.NewReader(in)); err == nil {
			t.Errorf("accepted %s", in)
		}
	}
}

func TestReadSpecAcceptsData(t *testing.T) {
	h := strings.Repeat("0f", 32)
	s, err := ReadSpec(strings.NewReader(`{"forecast":{"dataset":"mine","horizon":7},"data":{"name":"mine","hash":"` + h + `","path":"/d/.versions/` + h + `.csv"}}`))
	if err != nil || s.Data == nil || s.Data.Hash != h || s.Data.Path == "" || s.Kind() != KindForecast {
		t.Errorf("%+v %v", s, err)
	}
}

func TestReadSpecAcceptsTune(t *testing.T) {
	s, err := ReadSpec(strings.NewReader(`{"run":{"kind":"tune","dataset":"bike","trials":4}}`))
	if err != nil || s.Kind() != KindTune || s.Run.Trials != 4 {
		t.Errorf("%+v %v", s, err)
	}
}
