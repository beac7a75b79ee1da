// Package hook runs the OCI lifecycle hooks of a container's spec
// (prestart, createRuntime, createContainer, startContainer, poststart,
// poststop): each hook's path with its args and env, the container's
// state JSON on its standard input, killed once its timeout passes.
package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Kind names one list of hooks of the spec.
type Kind string

// The hook lists, by their names in config.json.
const (
	Prestart        Kind = "prestart"
	CreateRuntime   Kind = "createRuntime"
	CreateContainer Kind = "createContainer"
	StartContainer  Kind = "startContainer"
	Poststart       Kind = "poststart"
	Poststop        Kind = "poststop"
)

// outputLimit is how much of a failed hook's output its error quotes.
const outputLimit = 512

// List returns the hooks of kind k in spec (none if spec has no hooks).
func List(spec *specs.Spec, k Kind) []specs.Hook {
	h := spec.Hooks
	if h == nil {
		return nil
	}
	switch k {
	case Prestart:
		return h.Prestart //nolint:staticcheck // deprecated, still run as runc does
	case CreateRuntime:
		return h.CreateRuntime
	case CreateContainer:
		return h.CreateContainer
	case StartContainer:
		return h.StartContainer
	case Poststart:
		return h.Poststart
	case Poststop:
		return h.Poststop
	}
	return nil
}

// HasCreateHooks reports whether spec has hooks the create operation
// runs: prestart, createRuntime or createContainer.
func HasCreateHooks(spec *specs.Spec) bool {
	return len(List(spec, Prestart))+len(List(spec, CreateRuntime))+len(List(spec, CreateContainer)) > 0
}

// Starter starts a hook's command: where a hook must run in other
// namespaces, it starts it from a thread that joined them. Nil means
// cmd.Start.
type Starter func(cmd *exec.Cmd) error

// Run runs the hooks of kind k in spec, in order, each with state on its
// standard input, and stops at the first that fails: its error names the
// hook (`hooks.prestart[1] "/usr/bin/x": exit status 2: <output>`).
func Run(spec *specs.Spec, k Kind, state specs.State, start Starter) error {
	hooks := List(spec, k)
	if len(hooks) == 0 {
		return nil
	}
	data, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("hooks.%s: encoding the state: %w", k, err)
	}
	for i, h := range hooks {
		if err := runOne(h, data, start); err != nil {
			return fmt.Errorf("hooks.%s[%d] %q: %w", k, i, h.Path, err)
		}
	}
	return nil
}

// RunWarning runs every hook of kind k in spec, as Run does, but a hook
// that fails is logged as a warning and the next one runs: the spec's
// rule for poststart and poststop hooks.
func RunWarning(spec *specs.Spec, k Kind, state specs.State) {
	hooks := List(spec, k)
	if len(hooks) == 0 {
		return
	}
	data, err := json.Marshal(state)
	if err != nil {
		slog.Warn("hook not run", "kind", string(k), "err", err)
		return
	}
	for i, h := range hooks {
		if err := runOne(h, data, nil); err != nil {
			slog.Warn(fmt.Sprintf("hooks.%s[%d] %q failed", k, i, h.Path), "id", state.ID, "err", err)
		}
	}
}

// waitDelay bounds how long a hook's output is read after it exited: a
// process it left behind holding its stdout must not hang the runtime.
const waitDelay = 2 * time.Second

// runOne runs hook h with stdin on its standard input.
func runOne(h specs.Hook, stdin []byte, start Starter) error {
	ctx := context.Background()
	if h.Timeout != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args, cmd.Env, cmd.Stdin = h.Args, h.Env, bytes.NewReader(stdin)
	// Its own process group, so that a timeout kills what it started
	// too (exec kills only a process not yet waited for).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Called only if the hook has not exited by the deadline.
	var timedOut atomic.Bool
	cmd.Cancel = func() error {
		timedOut.Store(true)
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay
	if len(cmd.Args) == 0 {
		cmd.Args = []string{h.Path}
	}
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if start == nil {
		start = (*exec.Cmd).Start
	}
	if err := start(cmd); err != nil {
		return err
	}
	err := cmd.Wait()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited 0; what it left behind still holds its output.
		err = nil
	}
	if timedOut.Load() {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if msg := strings.Join(strings.Fields(out.String()), " "); errors.As(err, &ee) && msg != "" {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}

// limitedBuffer keeps the first outputLimit bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

// Write implements io.Writer, dropping what exceeds the limit.
func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := outputLimit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// kinds are the hook lists in the order of a container's lifecycle.
var kinds = []Kind{Prestart, CreateRuntime, CreateContainer, StartContainer, Poststart, Poststop}

// Validate checks every hook of spec: an absolute path and, if set, a
// positive timeout. The error names the field.
func Validate(spec *specs.Spec) error {
	for _, k := range kinds {
		for i, h := range List(spec, k) {
			switch {
			case !strings.HasPrefix(h.Path, "/"):
				return fmt.Errorf("hooks.%s[%d].path %q: must be absolute", k, i, h.Path)
			case strings.IndexByte(h.Path, 0) >= 0:
				return fmt.Errorf("hooks.%s[%d].path %q: must not contain NUL bytes", k, i, h.Path)
			case h.Timeout != nil && *h.Timeout <= 0:
				return fmt.Errorf("hooks.%s[%d].timeout %d: must be positive", k, i, *h.Timeout)
			}
		}
	}
	return nil
}
