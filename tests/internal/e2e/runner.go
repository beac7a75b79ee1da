package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runsc/runsc/internal/testhelp"
)

// Runner runs one program (ctr, podman) for a suite, every invocation
// bounded by a timeout.
type Runner struct {
	// Program is the command run, looked up on $PATH.
	Program string
	// Flags, when set, returns the flags given before every invocation's
	// arguments (called at each run: they may change).
	Flags func() []string
	// Env is the program's environment; nil means the caller's.
	Env []string
	// OutDir is where each invocation's stdout and stderr are written,
	// as files N.stdout and N.stderr.
	OutDir string
	// StepTimeout bounds an invocation that names no timeout.
	StepTimeout time.Duration
	seq         atomic.Int64
}

// Invocation is one command of a Runner.
type Invocation struct {
	// Step names the command in logs and failures.
	Step string
	// Args follow the Runner's flags.
	Args []string
	// Stdin is the command's input; nil means /dev/null.
	Stdin io.Reader
	// TTY, when set, is the command's controlling terminal and its
	// stdin, stdout and stderr (a pty's replica side); the caller reads
	// the output from the other side.
	TTY *os.File
	// Timeout bounds the command; zero means the Runner's StepTimeout.
	Timeout time.Duration
}

// Result is a finished command.
type Result struct {
	// Stdout and Stderr are the command's output (empty with a TTY).
	Stdout, Stderr string
	// Code is the exit status; -1 when the command did not exit.
	Code int
	// Dur is how long the command ran.
	Dur time.Duration
}

// ErrTimeout marks a command killed at its timeout.
var ErrTimeout = errors.New("timed out")

// Run runs one command in its own process group (with a TTY, its own
// session), bounded by its timeout: on expiry the whole group is killed
// and an error wrapping ErrTimeout names the step. Output goes to files,
// not pipes, so that a process inheriting them (a daemon, a shim) cannot
// make the wait hang. Whatever the command started outside its group is
// left to the caller's cleanup.
func (r *Runner) Run(inv Invocation) (Result, error) {
	timeout := inv.Timeout
	if timeout == 0 {
		timeout = r.StepTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var args []string
	if r.Flags != nil {
		args = r.Flags()
	}
	cmd := exec.CommandContext(ctx, r.Program, append(args, inv.Args...)...)
	cmd.Env = r.Env
	base := filepath.Join(r.OutDir, strconv.FormatInt(r.seq.Add(1), 10))
	var outF, errF *os.File
	if inv.TTY != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inv.TTY, inv.TTY, inv.TTY
		// A new session (so also a new process group) with the pty as
		// its controlling terminal.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	} else {
		var err error
		if outF, err = os.Create(base + ".stdout"); err != nil {
			return Result{}, err
		}
		defer outF.Close()
		if errF, err = os.Create(base + ".stderr"); err != nil {
			return Result{}, err
		}
		defer errF.Close()
		cmd.Stdout, cmd.Stderr = outF, errF
		cmd.Stdin = inv.Stdin
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res := Result{Dur: time.Since(start), Code: -1}
	if outF != nil {
		out, _ := os.ReadFile(outF.Name())
		stderr, _ := os.ReadFile(errF.Name())
		res.Stdout, res.Stderr = string(out), string(stderr)
	}
	what := "`" + r.Program + " " + strings.Join(inv.Args, " ") + "`"
	if ctx.Err() != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return res, fmt.Errorf("step %q: %s %w after %v (its process group was killed); stderr: %s",
			inv.Step, what, ErrTimeout, timeout, strings.TrimSpace(res.Stderr))
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.Code = 0
	case errors.As(err, &ee) && ee.Exited():
		res.Code = ee.ExitCode()
	case errors.As(err, &ee):
		return res, fmt.Errorf("step %q: %s died: %v", inv.Step, what, err)
	default:
		return res, fmt.Errorf("step %q: %s: %v", inv.Step, what, err)
	}
	return res, nil
}

// Test runs inv for a test: a timeout or a failure to run the program
// fails the test; the command, its exit status and its duration are
// logged.
func (r *Runner) Test(t testing.TB, inv Invocation) Result {
	t.Helper()
	res, err := r.Run(inv)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: `%s %s` exited %d in %v", inv.Step, r.Program, strings.Join(inv.Args, " "), res.Code, res.Dur.Round(time.Millisecond))
	return res
}

// Must runs the program with args for a test, requires exit status 0 and
// returns its trimmed stdout.
func (r *Runner) Must(t testing.TB, step string, args ...string) string {
	t.Helper()
	res := r.Test(t, Invocation{Step: step, Args: args})
	if res.Code != 0 {
		t.Fatalf("%s: `%s %s` exited %d, want 0\nstdout: %s\nstderr: %s", step, r.Program, strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return strings.TrimSpace(res.Stdout)
}

// WantOutput fails the test unless got (trimmed) equals want, and logs
// the check.
func WantOutput(t testing.TB, what, got, want string) {
	t.Helper()
	got = strings.TrimSpace(got)
	if got != want {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
	t.Logf("checked %s: %q", what, got)
}

// WantCode fails the test unless res exited with want, and logs the
// check.
func WantCode(t testing.TB, what string, res Result, want int) {
	t.Helper()
	if res.Code != want {
		t.Fatalf("%s: exit status %d, want %d\nstdout: %s\nstderr: %s", what, res.Code, want, res.Stdout, res.Stderr)
	}
	t.Logf("checked %s: exit status %d", what, res.Code)
}

// WaitFor polls cond until it holds or timeout passes, fails the test
// naming what it waited for, and logs what it checked.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	start := time.Now()
	testhelp.WaitFor(t, what, timeout, cond)
	t.Logf("checked %s (after %v)", what, time.Since(start).Round(time.Millisecond))
}
