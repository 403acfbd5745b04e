package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildServer compiles the server once into dir, from the module that holds
// this benchmark, so every scenario measures the same binary (not `go run`).
// rig is what every run needs first: a scratch folder, the server binary built
// into it, and the sandbox running as a process of its own.
type rig struct {
	dir, bin string
	sandbox  *process
	ctl      sandboxControl
}

// newRig builds the server and starts the sandbox with sandboxArgs (e.g.
// -account-token); close stops and removes them.
func newRig(ctx context.Context, name string, sandboxArgs ...string) (*rig, error) {
	dir, err := os.MkdirTemp("", "oceangraph-"+name+"-")
	if err != nil {
		return nil, err
	}
	r := &rig{dir: dir}
	fmt.Println("building the server binary...")
	if r.bin, err = buildServer(ctx, dir); err == nil {
		r.sandbox, r.ctl, err = startSandbox(ctx, r.bin, dir, sandboxArgs...)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

func (r *rig) close() {
	if r.sandbox != nil { // nil when a restart of the sandbox failed
		r.sandbox.stop()
	}
	os.RemoveAll(r.dir)
}

func buildServer(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "oceangraph")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot is the directory of the go.mod this benchmark belongs to.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside the oceangraph module (%v)", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// freeAddr returns a loopback address with a port the kernel just handed out.
// The port is released before the child binds it, a window no other program
// on a benchmark machine is expected to race for.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// process is a child program (the sandbox or the server) with its log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	URL     string
	logPath string
	exited  chan struct{}
	waitErr error
}

// start runs bin with args and env, logging to a file in logDir, and polls
// probe on addr until it answers 200.
func start(ctx context.Context, name, bin string, args, env []string, addr, probe, logDir string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, URL: "http://" + addr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	if err := p.waitReady(ctx, probe); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls the probe path until it answers 200, the child exits or 30s pass.
func (p *process) waitReady(ctx context.Context, probe string) error {
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%v); its log:\n%s", p.name, p.waitErr, p.logTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := client.Get(p.URL + probe)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %s with 200 within 30s; its log:\n%s", p.name, probe, p.logTail())
}

// logTail returns the last lines of the child's log, for error messages.
func (p *process) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stop asks the child to shut down gracefully and kills it after 10s.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// procStats is what /proc tells about a process.
type procStats struct {
	RSS, HWM int64         // bytes
	CPU      time.Duration // user + system time so far
}

// clockTick is USER_HZ, 100 on every Linux this runs on.
const clockTick = 100

func readProc(pid int) (procStats, error) {
	var s procStats
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			s.RSS = n << 10
		case "VmHWM":
			s.HWM = n << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces:
	// state(3) ... utime(14) stime(15).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, errors.New("unexpected /proc/pid/stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, errors.New("short /proc/pid/stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	s.CPU = time.Duration(utime+stime) * time.Second / clockTick
	return s, nil
}

// resetPeakRSS sets VmHWM back to the current RSS (Linux clear_refs "5"), so
// each scenario reports its own peak rather than the process's lifetime one.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }
