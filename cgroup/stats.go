package cgroup

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stats are a cgroup's metrics in the JSON of runc's `events` (its
// types.Stats), which tools written for runc decode.
type Stats struct {
	CPU     CPU                `json:"cpu"`
	Memory  Memory             `json:"memory"`
	Pids    Pids               `json:"pids"`
	Blkio   Blkio              `json:"blkio"`
	Hugetlb map[string]Hugetlb `json:"hugetlb"`
}

// CPU is CPU time used and throttling.
type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
}

// CPUUsage is CPU time, in nanoseconds.
type CPUUsage struct {
	Total  uint64   `json:"total,omitempty"`
	Percpu []uint64 `json:"percpu,omitempty"`
	Kernel uint64   `json:"kernel"`
	User   uint64   `json:"user"`
}

// Throttling counts CFS bandwidth throttling.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// MemoryEntry is one memory counter with its limit.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Memory is memory use; Raw holds memory.stat.
type Memory struct {
	Cache uint64            `json:"cache,omitempty"`
	Usage MemoryEntry       `json:"usage,omitempty"`
	Swap  MemoryEntry       `json:"swap,omitempty"`
	Raw   map[string]uint64 `json:"raw,omitempty"`
}

// Pids is the process count and its limit (0: none).
type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// BlkioEntry is one block I/O counter of one device.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Blkio is block I/O done.
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
}

// Hugetlb is the use of one huge page size.
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// maxValue is what a limit reads as when there is none.
const maxValue = ^uint64(0)

// readUint reads a file holding one number ("max": maxValue); 0 if the
// file is missing.
func readUint(path string) uint64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return maxValue
	}
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}

// readKeyed reads a file of "key value" lines.
func readKeyed(path string) map[string]uint64 {
	out := map[string]uint64{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 {
			if v, err := strconv.ParseUint(fields[1], 10, 64); err == nil {
				out[fields[0]] = v
			}
		}
	}
	return out
}

// Stats reads the cgroup's metrics. Missing files (a controller the host
// lacks) leave their fields zero.
func (c *Cgroup) Stats() *Stats {
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	for key, dir := range c.Paths {
		if isV2(key) {
			c.statsV2(key, dir, s)
			continue
		}
		f := func(name string) string { return filepath.Join(dir, name) }
		if hasController(key, "cpuacct") {
			s.CPU.Usage.Total = readUint(f("cpuacct.usage"))
			if data, err := os.ReadFile(f("cpuacct.usage_percpu")); err == nil {
				for _, v := range strings.Fields(string(data)) {
					n, _ := strconv.ParseUint(v, 10, 64)
					s.CPU.Usage.Percpu = append(s.CPU.Usage.Percpu, n)
				}
			}
			// cpuacct.stat counts USER_HZ (100) ticks.
			st := readKeyed(f("cpuacct.stat"))
			s.CPU.Usage.User, s.CPU.Usage.Kernel = st["user"]*10_000_000, st["system"]*10_000_000
		}
		if hasController(key, "cpu") {
			st := readKeyed(f("cpu.stat"))
			s.CPU.Throttling = Throttling{st["nr_periods"], st["nr_throttled"], st["throttled_time"]}
		}
		if hasController(key, "memory") {
			s.Memory.Usage = MemoryEntry{readUint(f("memory.limit_in_bytes")), readUint(f("memory.usage_in_bytes")), readUint(f("memory.max_usage_in_bytes")), readUint(f("memory.failcnt"))}
			s.Memory.Swap = MemoryEntry{readUint(f("memory.memsw.limit_in_bytes")), readUint(f("memory.memsw.usage_in_bytes")), readUint(f("memory.memsw.max_usage_in_bytes")), readUint(f("memory.memsw.failcnt"))}
			s.Memory.Raw = readKeyed(f("memory.stat"))
			s.Memory.Cache = s.Memory.Raw["cache"]
		}
		if hasController(key, "pids") {
			s.Pids = Pids{readUint(f("pids.current")), limitOrZero(readUint(f("pids.max")))}
		}
		if hasController(key, "blkio") {
			s.Blkio.IoServiceBytesRecursive = readBlkio(f("blkio.throttle.io_service_bytes_recursive"))
			s.Blkio.IoServicedRecursive = readBlkio(f("blkio.throttle.io_serviced_recursive"))
		}
		if hasController(key, "hugetlb") {
			for _, size := range hugePageSizes(dir, ".limit_in_bytes") {
				p := "hugetlb." + size
				s.Hugetlb[size] = Hugetlb{readUint(f(p + ".usage_in_bytes")), readUint(f(p + ".max_usage_in_bytes")), readUint(f(p + ".failcnt"))}
			}
		}
	}
	return s
}

// statsV2 reads the metrics of a v2 cgroup directory (hierarchy key).
func (c *Cgroup) statsV2(key, dir string, s *Stats) {
	f := func(name string) string { return filepath.Join(dir, name) }
	if hasController(key, "cpu") {
		st := readKeyed(f("cpu.stat"))
		s.CPU.Usage = CPUUsage{Total: st["usage_usec"] * 1000, Kernel: st["system_usec"] * 1000, User: st["user_usec"] * 1000}
		s.CPU.Throttling = Throttling{st["nr_periods"], st["nr_throttled"], st["throttled_usec"] * 1000}
	}
	if hasController(key, "memory") {
		s.Memory.Raw = readKeyed(f("memory.stat"))
		s.Memory.Cache = s.Memory.Raw["file"]
		s.Memory.Usage = MemoryEntry{Limit: readUint(f("memory.max")), Usage: readUint(f("memory.current")), Max: readUint(f("memory.peak")), Failcnt: readKeyed(f("memory.events"))["max"]}
		s.Memory.Swap = MemoryEntry{Limit: readUint(f("memory.swap.max")), Usage: readUint(f("memory.swap.current"))}
	}
	if hasController(key, "pids") {
		s.Pids = Pids{readUint(f("pids.current")), limitOrZero(readUint(f("pids.max")))}
	}
	if hasController(key, "hugetlb") {
		for _, size := range hugePageSizes(dir, ".max") {
			p := "hugetlb." + size
			s.Hugetlb[size] = Hugetlb{Usage: readUint(f(p + ".current")), Failcnt: readKeyed(f(p + ".events"))["max"]}
		}
	}
}

// limitOrZero reports no limit as 0, as runc does for pids.
func limitOrZero(v uint64) uint64 {
	if v == maxValue {
		return 0
	}
	return v
}

// hugePageSizes lists the huge page sizes ("2MB") that have a
// hugetlb.<size><suffix> file in dir.
func hugePageSizes(dir, suffix string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, "hugetlb.*"+suffix))
	var out []string
	for _, m := range matches {
		size := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), "hugetlb."), suffix)
		if !strings.Contains(size, ".") {
			out = append(out, size)
		}
	}
	return out
}

// readBlkio reads a v1 blkio file of "major:minor op value" lines.
func readBlkio(path string) []BlkioEntry {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []BlkioEntry
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 3 {
			continue
		}
		majmin := strings.SplitN(fields[0], ":", 2)
		if len(majmin) != 2 {
			continue
		}
		major, _ := strconv.ParseUint(majmin[0], 10, 64)
		minor, _ := strconv.ParseUint(majmin[1], 10, 64)
		v, _ := strconv.ParseUint(fields[2], 10, 64)
		out = append(out, BlkioEntry{major, minor, fields[1], v})
	}
	return out
}

// OOMKills returns how many processes of the cgroup the kernel's OOM
// killer killed (v1 memory.oom_control, v2 memory.events).
func (c *Cgroup) OOMKills() uint64 {
	for key, dir := range c.Paths {
		switch {
		case key == "":
			return readKeyed(filepath.Join(dir, "memory.events"))["oom_kill"]
		case !isV2(key) && hasController(key, "memory"):
			return readKeyed(filepath.Join(dir, "memory.oom_control"))["oom_kill"]
		}
	}
	return 0
}
