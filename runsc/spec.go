package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/runsc/runsc/specutils"
)

func init() {
	register(&command{name: "spec", synopsis: "create a default config.json in a bundle", run: runSpec})
}

// runSpec implements `runsc spec [--bundle DIR] [--rootless]`, as runc
// spec: it writes the default spec (specutils.DefaultSpec) to
// DIR/config.json, which must not exist yet.
func runSpec(g *globals, args []string) error {
	fs := newFlagSet("spec", "")
	bundle := fs.String("bundle", ".", "directory to write config.json in")
	fs.StringVar(bundle, "b", ".", "directory to write config.json in (short)")
	rootless := fs.Bool("rootless", false, "write a spec for an unprivileged user (a user namespace mapping root to the caller, no network namespace)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("spec: unexpected argument %q", fs.Arg(0))
	}
	fi, err := os.Stat(*bundle)
	if err != nil {
		return fmt.Errorf("spec: bundle: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("spec: bundle %s: not a directory", *bundle)
	}
	spec := specutils.DefaultSpec()
	if *rootless {
		specutils.ToRootless(spec)
	}
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	name := filepath.Join(*bundle, "config.json")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("spec: config.json already exists in %s", *bundle)
	}
	if err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(name)
		return fmt.Errorf("spec: writing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("spec: writing %s: %w", name, err)
	}
	return nil
}
