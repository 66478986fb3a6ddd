package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one `kairoscope serve` child process on loopback.
type server struct {
	cmd    *exec.Cmd
	addr   string // 127.0.0.1:PORT of HTTP
	nats   string // nats://127.0.0.1:PORT of its embedded NATS
	dir    string
	exited chan struct{}
	err    error // valid once exited is closed

	mu   sync.Mutex
	logs []string // its last log lines
}

// startServer starts bin serve on 127.0.0.1 with a fresh data folder,
// its embedded NATS on loopback too, and extra flags; it returns once the
// server says it listens.
func startServer(ctx context.Context, bin string, extra []string, wait time.Duration) (*server, error) {
	dir, err := os.MkdirTemp("", "kairoscope-loadgen-")
	if err != nil {
		return nil, err
	}
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, nats: "nats://127.0.0.1:" + strconv.Itoa(natsPort), exited: make(chan struct{})}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--nats-listen", "127.0.0.1:" + strconv.Itoa(natsPort)}, extra...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = withoutEnv(os.Environ(), "KAIROSCOPE_TOKEN", "KAIROSCOPE_NATS", "KAIROSCOPE_CUDA_WORKER")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	addr := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			if s.logs = append(s.logs, line); len(s.logs) > 50 {
				s.logs = s.logs[1:]
			}
			s.mu.Unlock()
			var l struct{ Message, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Message == "kairoscope listening" && l.Addr != "" {
				select {
				case addr <- l.Addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-copied
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.addr = <-addr:
	case <-s.exited:
		return nil, fmt.Errorf("kairoscope serve exited before listening: %v\n%s", s.err, s.tail())
	case <-time.After(wait):
		s.kill()
		return nil, fmt.Errorf("kairoscope serve did not listen within %v\n%s", wait, s.tail())
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	}
	if host, _, _ := net.SplitHostPort(s.addr); !net.ParseIP(host).IsLoopback() {
		s.kill()
		return nil, fmt.Errorf("the server listens on %s, not loopback", s.addr)
	}
	return s, s.ready(ctx, wait)
}

// ready waits for GET /healthz to answer 200.
func (s *server) ready(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		if s.healthy() {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("GET /healthz not 200 within %v", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) healthy() bool {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// rss returns the server process's resident memory in bytes.
func (s *server) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpu returns the server process's CPU seconds (user + system) and its
// reaped children's: the workers, once they have exited.
func (s *server) cpu() (self, children float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	str := string(b)
	f := strings.Fields(str[strings.LastIndexByte(str, ')')+1:])
	// After the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
	tick := func(i int) float64 { v, _ := strconv.ParseFloat(f[i], 64); return v / 100 } // USER_HZ
	if len(f) < 15 {
		return 0, 0
	}
	return tick(11) + tick(12), tick(13) + tick(14)
}

// ownCPU is this process's CPU seconds, user + system.
func ownCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// stop sends SIGTERM and waits for the exit: nil when it exited 0 within
// wait.
func (s *server) stop(wait time.Duration) error {
	defer os.RemoveAll(s.dir)
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.err != nil {
			return fmt.Errorf("kairoscope serve exited with %v\n%s", s.err, s.tail())
		}
		return nil
	case <-time.After(wait):
		s.kill()
		return fmt.Errorf("kairoscope serve did not exit within %v of SIGTERM", wait)
	}
}

func (s *server) kill() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}

func (s *server) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logs, "\n")
}

// postRun starts a run and returns its ID.
func (s *server) postRun(body string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post("http://"+s.addr+"/api/runs", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct {
		RunID string `json:"run_id"`
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&r)
	if resp.StatusCode != http.StatusAccepted || r.RunID == "" {
		return "", fmt.Errorf("POST /api/runs %s: %s %s", body, resp.Status, r.Error)
	}
	return r.RunID, nil
}

// slowCloses reads the server's count of /ws clients closed as slow.
func (s *server) slowCloses() int {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + s.addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "kairoscope_ws_slow_closes_total{") && strings.Contains(line, `endpoint="/ws"`) {
			f := strings.Fields(line)
			n, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return int(n)
		}
	}
	return -1
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}
