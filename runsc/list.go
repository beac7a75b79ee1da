package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/container"
)

func init() {
	register(&command{name: "list", synopsis: "list containers", run: runList})
	register(&command{name: "ps", synopsis: "list a container's processes", run: runPs})
}

// listEntry is one container in `list --format json`, as runc prints it.
type listEntry struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func runList(g *globals, args []string) error {
	fs := newFlagSet("list", "")
	quiet := fs.Bool("quiet", false, "print only IDs")
	fs.BoolVar(quiet, "q", false, "print only IDs (short)")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json (short)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("list: --format %q: want table or json", *format)
	}
	ids, err := container.List(g.Root)
	if err != nil {
		return err
	}
	entries := []listEntry{}
	for _, id := range ids {
		c, err := container.Load(g.Root, id)
		if err != nil {
			// Deleted meanwhile.
			continue
		}
		st, err := c.OCIState()
		created := c.Created
		c.Close()
		if err != nil {
			continue
		}
		entries = append(entries, listEntry{
			ID: st.ID, Pid: st.Pid, Status: string(st.Status), Bundle: st.Bundle,
			Created: created, Owner: "root", Annotations: st.Annotations,
		})
	}
	if *quiet {
		for _, e := range entries {
			fmt.Println(e.ID)
		}
		return nil
	}
	if *format == "json" {
		out, err := json.Marshal(entries)
		if err != nil {
			return err
		}
		fmt.Println(string(out))
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
	fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", e.ID, e.Pid, e.Status, e.Bundle, e.Created.Format(time.RFC3339Nano), e.Owner)
	}
	return w.Flush()
}

func runPs(g *globals, args []string) error {
	fs := newFlagSet("ps", "ID")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json (short)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("ps: --format %q: want table or json", *format)
	}
	c, err := loadArg(g, fs, "ps")
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.OCIState()
	if err != nil {
		return err
	}
	if st.Status == specs.StateStopped {
		return fmt.Errorf("ps: container %q is not running", c.ID)
	}
	procs, err := c.Processes()
	if err != nil {
		return err
	}
	if *format == "json" {
		pids := make([]int, 0, len(procs))
		for _, p := range procs {
			pids = append(pids, p.PID)
		}
		out, _ := json.Marshal(pids)
		fmt.Println(string(out))
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 6, 1, 2, ' ', 0)
	fmt.Fprint(w, "PID\tPPID\tCMD\n")
	for _, p := range procs {
		fmt.Fprintf(w, "%d\t%d\t%s\n", p.PID, p.PPID, p.Cmd)
	}
	return w.Flush()
}
