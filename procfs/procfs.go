// Package procfs reads the few per-process facts runsc needs from a proc
// file system: /proc/<pid>/stat and the NSpid line of /proc/<pid>/status.
// Every parser of those files in runsc is here.
package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is the part of /proc/<pid>/stat runsc uses.
type Stat struct {
	// Comm is the command name (field 2, without the parentheses).
	Comm string
	// State is the state letter (field 3): R, S, D, Z, ...
	State byte
	// PPID is the parent's pid (field 4), 0 if the parent is outside
	// the reader's pid namespace.
	PPID int
	// StartTime is the start time in clock ticks after boot (field 22):
	// with the pid, it identifies a process across pid reuse.
	StartTime uint64
	// ExitCode is the wait status of an exited process (field 52),
	// readable until it is reaped; 0 while it runs.
	ExitCode int
}

// Zombie reports whether the process has exited and waits to be reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// ParseStat parses the contents of a /proc/<pid>/stat file. The command
// name may hold any byte, spaces and parentheses included: it runs from
// the first "(" to the last ")".
func ParseStat(data []byte) (Stat, error) {
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("proc stat: no command name in %q", trim(s))
	}
	// Fields after ")" start at field 3 (state).
	f := strings.Fields(s[end+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("proc stat: %d fields after the command name, want at least 20", len(f))
	}
	// The kernel's task states (fs/proc/array.c).
	if !strings.Contains("RSDTtXZPIKWx", f[0]) {
		return Stat{}, fmt.Errorf("proc stat: state %q: not a process state", f[0])
	}
	st := Stat{Comm: s[open+1 : end], State: f[0][0]}
	var err error
	if st.PPID, err = strconv.Atoi(f[1]); err != nil {
		return Stat{}, fmt.Errorf("proc stat: ppid %q: %w", f[1], err)
	}
	if st.StartTime, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("proc stat: starttime %q: %w", f[19], err)
	}
	if len(f) >= 50 {
		// Field 52 is f[49]; kernels before 3.5 do not have it.
		if st.ExitCode, err = strconv.Atoi(f[49]); err != nil {
			return Stat{}, fmt.Errorf("proc stat: exit_code %q: %w", f[49], err)
		}
	}
	return st, nil
}

// ReadStat reads /proc/<pid>/stat under the proc file system at procDir
// ("/proc" for the caller's own).
func ReadStat(procDir string, pid int) (Stat, error) {
	data, err := os.ReadFile(procDir + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(data)
}

// ParseNSpid returns the pids of the NSpid line of a /proc/<pid>/status
// file: the process's pid in each pid namespace from the reader's down to
// its own.
func ParseNSpid(status []byte) ([]int, error) {
	for _, line := range strings.Split(string(status), "\n") {
		v, ok := strings.CutPrefix(line, "NSpid:")
		if !ok {
			continue
		}
		var out []int
		for _, fld := range strings.Fields(v) {
			n, err := strconv.Atoi(fld)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("proc status: NSpid %q: not a pid list", trim(v))
			}
			out = append(out, n)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("proc status: empty NSpid")
		}
		return out, nil
	}
	return nil, fmt.Errorf("proc status: no NSpid line")
}

// PendingSignals returns the signals pending for a process, from the
// SigPnd (the thread group leader's own) and ShdPnd (the group's) lines
// of a /proc/<pid>/status file: bit n-1 is signal n.
func PendingSignals(status []byte) (uint64, error) {
	var mask uint64
	found := 0
	for _, line := range strings.Split(string(status), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "SigPnd" && name != "ShdPnd") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("proc status: %s %q: not a signal mask", name, trim(v))
		}
		mask |= n
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("proc status: no SigPnd and ShdPnd lines")
	}
	return mask, nil
}

// FDInfoPid returns the "Pid:" of a pidfd's /proc/self/fdinfo entry: the
// process's pid in the pid namespace of that proc file system, -1 once
// the process has exited (0 if it is outside that namespace).
func FDInfoPid(fdinfo []byte) (int, error) {
	for _, line := range strings.Split(string(fdinfo), "\n") {
		v, ok := strings.CutPrefix(line, "Pid:")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("pidfd fdinfo: Pid %q: %w", trim(v), err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("pidfd fdinfo: no Pid line (not a pidfd?)")
}

// PidfdPid returns the pid of the process pidfd names, in the pid
// namespace of this process's /proc: -1 once it has been reaped, 0 if it
// is outside that namespace.
func PidfdPid(pidfd int) (int, error) {
	info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(pidfd))
	if err != nil {
		return 0, fmt.Errorf("pidfd fdinfo: %w", err)
	}
	return FDInfoPid(info)
}

// trim shortens s for an error message.
func trim(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Mount is one line of a mountinfo file.
type Mount struct {
	// ID is the mount's ID (as statx's STATX_MNT_ID gives it).
	ID uint64
	// MajorMinor is the device ("0:42").
	MajorMinor string
	// Root is the path, in its file system, of the mount's root
	// ("net:[4026531840]" for a bound namespace), unescaped.
	Root string
	// Optional are the optional fields (propagation: "shared:N",
	// "master:N", ...).
	Optional []string
	// Point is the mount point, unescaped.
	Point string
	// FSType, Source and Super are the file system type, source and
	// super-block options (after the " - " separator).
	FSType, Source, Super string
}

// ParseMountinfo parses a /proc/<pid>/mountinfo file; malformed lines
// are skipped.
func ParseMountinfo(data []byte) []Mount {
	var out []Mount
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || sep+3 >= len(fields) {
			continue
		}
		id, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, Mount{
			ID:         id,
			MajorMinor: fields[2],
			Root:       unescapeOctal(fields[3]),
			Optional:   fields[6:sep],
			Point:      unescapeOctal(fields[4]),
			FSType:     fields[sep+1],
			Source:     fields[sep+2],
			Super:      fields[sep+3],
		})
	}
	return out
}

// unescapeOctal undoes mountinfo's octal escapes (\040 for a space).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
