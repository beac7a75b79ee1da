package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/runsc/runsc/specutils"
)

// setupLogging installs the process-wide slog logger from the global
// flags and returns a function closing the log files.
func setupLogging(g *globals, stderr io.Writer) (func(), error) {
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	open := func(flagName, path string) (io.Writer, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagName, err)
		}
		closers = append(closers, f)
		return f, nil
	}
	newHandler := func(w io.Writer, level slog.Level) (slog.Handler, error) {
		opts := &slog.HandlerOptions{Level: level, ReplaceAttr: lowerLevel}
		switch g.LogFormat {
		case "text":
			return slog.NewTextHandler(w, opts), nil
		case "json":
			return slog.NewJSONHandler(w, opts), nil
		}
		return nil, fmt.Errorf("--log-format %q: want text or json", g.LogFormat)
	}
	level := slog.LevelWarn
	if g.Debug {
		level = slog.LevelDebug
	}
	var out io.Writer = stderr
	if g.LogFD >= 0 {
		f := os.NewFile(uintptr(g.LogFD), "log")
		closers = append(closers, f)
		out = f
	} else if g.Log != "" {
		w, err := open("log", g.Log)
		if err != nil {
			closeAll()
			return nil, err
		}
		out = w
	}
	h, err := newHandler(out, level)
	if err != nil {
		closeAll()
		return nil, err
	}
	handlers := []slog.Handler{h}
	slog.SetDefault(slog.New(fanout(handlers)))
	// addDebugLog adds the --debug-log file at path.
	addDebugLog := func(path string) error {
		if strings.HasSuffix(path, "/") {
			// A directory: each command logs to a file of its own.
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("--debug-log: %w", err)
			}
			path += "runsc." + g.command + ".log"
		}
		w, err := open("debug-log", path)
		if err != nil {
			return err
		}
		dh, _ := newHandler(w, slog.LevelDebug)
		handlers = append(handlers, dh)
		slog.SetDefault(slog.New(fanout(handlers)))
		return nil
	}
	switch {
	case g.DebugLogFD >= 0:
		f := os.NewFile(uintptr(g.DebugLogFD), "debug-log")
		closers = append(closers, f)
		dh, _ := newHandler(f, slog.LevelDebug)
		handlers = append(handlers, dh)
		slog.SetDefault(slog.New(fanout(handlers)))
	case g.DebugLog == "":
	case strings.Contains(g.DebugLog, idPattern):
		// Opened once the command has its container ID (see
		// resolveDebugLog).
		g.pendingDebugLog = addDebugLog
	default:
		if err := addDebugLog(g.DebugLog); err != nil {
			closeAll()
			return nil, err
		}
	}
	return closeAll, nil
}

// idPattern in --debug-log stands for the container ID, as in gVisor's
// runsc.toml examples ("/var/log/runsc/%ID%/").
const idPattern = "%ID%"

// resolveDebugLog opens a --debug-log naming idPattern, now that the
// command knows its container ID, and rewrites the global flags passed
// on to the processes this command starts (sandbox, gofer, init) to the
// resolved path. Commands without an ID leave it unopened.
func (g *globals) resolveDebugLog(id string) error {
	if g.pendingDebugLog == nil || specutils.ValidateID(id) != nil {
		return nil
	}
	open := g.pendingDebugLog
	g.pendingDebugLog = nil
	resolved := strings.ReplaceAll(g.DebugLog, idPattern, id)
	for i, a := range g.args {
		g.args[i] = strings.ReplaceAll(a, g.DebugLog, resolved)
	}
	g.DebugLog = resolved
	return open(resolved)
}

// logError records a command's failure in the log files, as runc does:
// an "error" record whose message is the error, which containerd's runc
// client reads back from --log to report why the runtime failed (stderr
// gets the one-line message from runMain).
func logError(g *globals, err error) {
	if g.Log == "" {
		// The log is stderr, which has the message already.
		slog.Debug(oneLine(err.Error()))
		return
	}
	slog.Error(oneLine(err.Error()))
}

// lowerLevel writes levels in lower case ("error"), as runc's logrus
// does and as containerd's runc client expects in a --log-format json
// file.
func lowerLevel(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey && len(groups) == 0 {
		a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
	}
	return a
}

// fanout sends each record to every handler that accepts its level.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			h.Handle(ctx, r.Clone())
		}
	}
	return nil
}

func (f fanout) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(attrs)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}
