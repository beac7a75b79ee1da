package e2e

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runsc/runsc/container"
	"github.com/runsc/runsc/internal/testhelp"
)

// Proc is a live (not zombie) process.
type Proc struct {
	Pid int
	// Exe is /proc/PID/exe's target; Args its command line, Cmdline
	// the same joined by spaces.
	Exe     string
	Args    []string
	Cmdline string
}

// Processes lists the live processes but the caller.
func Processes() []Proc {
	var ps []Proc
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() || !testhelp.Alive(pid) {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		ps = append(ps, Proc{Pid: pid, Exe: exe, Args: args, Cmdline: strings.Join(args, " ")})
	}
	return ps
}

// ProcessLeaks describes the live processes match accepts, one
// "process PID (EXE): CMDLINE" each.
func ProcessLeaks(match func(Proc) bool) []string {
	var leaks []string
	for _, p := range Processes() {
		if match(p) {
			leaks = append(leaks, fmt.Sprintf("process %d (%s): %s", p.Pid, p.Exe, p.Cmdline))
		}
	}
	return leaks
}

// Sandboxes describes the sandbox processes (`runsc boot`) of the
// runtime binary at runtime, one "PID: CMDLINE" each.
func Sandboxes(runtime string) []string {
	var boots []string
	for _, p := range Processes() {
		if !IsRuntime(p, runtime) {
			continue
		}
		if (len(p.Args) > 1 && p.Args[1] == "boot") || strings.Contains(p.Cmdline, " boot ") {
			boots = append(boots, fmt.Sprintf("%d: %s", p.Pid, p.Cmdline))
		}
	}
	return boots
}

// PollLeaks calls scan every 100ms until it finds nothing or timeout has
// passed (processes may take a moment to go), and returns its last
// findings.
func PollLeaks(timeout time.Duration, scan func() []string) []string {
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		leaks := scan()
		if len(leaks) == 0 || time.Now().After(deadline) {
			return leaks
		}
	}
}

// KillAll SIGKILLs the live processes match accepts, again every 100ms
// until none is left or 10s have passed. In each round those first
// accepts (if first is set) are killed before the others, e.g. shims or
// monitors that would react to the others' deaths.
func KillAll(match, first func(Proc) bool) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var left []Proc
		for _, p := range Processes() {
			if match(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if first != nil {
			for _, p := range left {
				if first(p) {
					syscall.Kill(p.Pid, syscall.SIGKILL)
				}
			}
		}
		for _, p := range left {
			syscall.Kill(p.Pid, syscall.SIGKILL)
		}
	}
}

// Mount is a line of /proc/self/mountinfo with its mount point unescaped.
type Mount struct{ Point, Line string }

// Mounts lists the caller's mount namespace's mounts.
func Mounts() []Mount {
	var ms []Mount
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			ms = append(ms, Mount{Point: unescapeMount(f[4]), Line: line})
		}
	}
	return ms
}

// MountLeaks describes the mounts match accepts, one "mount: LINE" each.
func MountLeaks(match func(Mount) bool) []string {
	var leaks []string
	for _, m := range Mounts() {
		if match(m) {
			leaks = append(leaks, "mount: "+m.Line)
		}
	}
	return leaks
}

// UnmountUnder detaches the mounts whose mount point starts with dir,
// deepest first, and returns their mount points.
func UnmountUnder(dir string) []string {
	var points []string
	for _, m := range Mounts() {
		if strings.HasPrefix(m.Point, dir) {
			points = append(points, m.Point)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		syscall.Unmount(p, syscall.MNT_DETACH)
	}
	return points
}

var octalEscape = regexp.MustCompile(`\\[0-7]{3}`)

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	return octalEscape.ReplaceAllStringFunc(s, func(o string) string {
		n, _ := strconv.ParseUint(o[1:], 8, 8)
		return string(rune(n))
	})
}

// IsRuntime reports whether p runs the runtime binary at runtime: the
// file itself (runsc commands, gofers) or a sealed copy of it (sandboxes
// and container inits before they exec; see container.CopyExe).
func IsRuntime(p Proc, runtime string) bool {
	return p.Exe == runtime || p.Exe == container.CopyExe(runtime)
}
