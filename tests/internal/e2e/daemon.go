package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Daemon is a long-running process of a suite (containerd, a registry) in
// its own process group, its stdout and stderr in a log file.
type Daemon struct {
	// Name names the daemon in errors; Log is its log file.
	Name, Log string
	cmd       *exec.Cmd
	done      chan struct{}
}

// StartDaemon starts args as daemon name in a process group of its own,
// with extraEnv after the caller's environment and its output in the file
// log (created).
func StartDaemon(name, log string, extraEnv []string, args ...string) (*Daemon, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), extraEnv...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %v", name, err)
	}
	d := &Daemon{Name: name, Log: log, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(d.done) }()
	return d, nil
}

// Pid is the daemon's pid.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Done is closed when the daemon has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// ProcessState is the daemon's exit state once Done is closed.
func (d *Daemon) ProcessState() *os.ProcessState { return d.cmd.ProcessState }

// WaitReady polls ready every interval until it returns nil, and fails
// if the daemon exits or timeout passes first, with the end of its log.
func (d *Daemon) WaitReady(timeout, interval time.Duration, ready func() error) error {
	for deadline := time.Now().Add(timeout); ; time.Sleep(interval) {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("%s exited at start-up (%v); its log:\n%s", d.Name, d.cmd.ProcessState, Tail(d.Log, 30))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v (%v); its log:\n%s", d.Name, timeout, err, Tail(d.Log, 30))
		}
	}
}

// Stop stops the daemon: SIGTERM, then SIGKILL to its process group if it
// has not exited within grace (which it reports as an error). It may be
// called more than once, and on nil.
func (d *Daemon) Stop(grace time.Duration) error {
	if d == nil || d.cmd == nil {
		return nil
	}
	select {
	case <-d.done:
		return nil
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(grace):
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
	return fmt.Errorf("%s ignored SIGTERM for %v and was killed", d.Name, grace)
}

// Tail returns the last n lines of file path (or the error reading it).
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Output runs a one-shot command bounded by timeout (its process group
// is killed at expiry) and returns its combined output.
func Output(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("`%s %s` timed out after %v", name, strings.Join(args, " "), timeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("`%s %s`: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
