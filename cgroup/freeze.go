package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// freezeTimeout bounds the wait for the kernel to freeze or thaw every
// process of a cgroup.
const freezeTimeout = 10 * time.Second

// Freeze freezes (frozen) or thaws every process of the cgroup, with the
// v1 freezer controller or v2's cgroup.freeze, and waits until the kernel
// reports it done.
func (c *Cgroup) Freeze(frozen bool) error {
	file, want, done, doneWant := "", "", "", ""
	for key, dir := range c.Paths {
		switch {
		case !isV2(key) && hasController(key, "freezer"):
			v := "THAWED"
			if frozen {
				v = "FROZEN"
			}
			file, want, done, doneWant = filepath.Join(dir, "freezer.state"), v, filepath.Join(dir, "freezer.state"), v
		case key == "" && file == "":
			v := "0"
			if frozen {
				v = "1"
			}
			file, want, done, doneWant = filepath.Join(dir, "cgroup.freeze"), v, filepath.Join(dir, "cgroup.events"), "frozen "+v
		}
	}
	if file == "" {
		return errors.New("no freezer: the cgroup has no freezer controller")
	}
	if err := os.WriteFile(file, []byte(want), 0); err != nil {
		return fmt.Errorf("writing %s to %s: %w", want, file, err)
	}
	deadline := time.Now().Add(freezeTimeout)
	for {
		data, err := os.ReadFile(done)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(line) == doneWant {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: still not %q after %v", done, doneWant, freezeTimeout)
		}
		if frozen && strings.HasSuffix(file, "freezer.state") {
			// v1 may stop at FREEZING: asking again retries.
			os.WriteFile(file, []byte(want), 0)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
