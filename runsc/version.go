package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// version is runsc's version; releases set it with
// -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func init() {
	register(&command{name: "version", synopsis: "print the runsc version", run: runVersion})
}

// printVersion prints the version as runc does: "runsc version X",
// then the commit, the OCI runtime-spec version and the Go version.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "runsc version %s\n", version)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				fmt.Fprintf(w, "commit: %s\n", s.Value)
			}
		}
	}
	fmt.Fprintf(w, "spec: %s\n", specs.Version)
	fmt.Fprintf(w, "go: %s\n", runtime.Version())
}

// runVersion implements `runsc version`.
func runVersion(g *globals, args []string) error {
	fs := newFlagSet("version", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("version: unexpected argument %q", fs.Arg(0))
	}
	printVersion(os.Stdout)
	return nil
}
