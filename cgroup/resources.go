package cgroup

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// write is one value written to a cgroup file.
type write struct {
	// field names the linux.resources field, for errors.
	field string
	file  string
	value string
	// optional files may be missing (memory.memsw without swap
	// accounting): the write is skipped then.
	optional bool
}

// writes returns the file writes that apply r in hierarchy key (its v1
// controllers, or "" for v2), in the order they must happen.
func writes(key string, r *specs.LinuxResources) []write {
	var out []write
	add := func(ctrl string, w ...write) {
		if hasController(key, ctrl) {
			out = append(out, w...)
		}
	}
	v2 := key == ""
	if m := r.Memory; m != nil {
		if v2 {
			if m.Limit != nil {
				add("memory", write{"memory.limit", "memory.max", limit(*m.Limit), false})
			}
			if m.Reservation != nil {
				add("memory", write{"memory.reservation", "memory.low", limit(*m.Reservation), false})
			}
			if m.Swap != nil && m.Limit != nil && *m.Swap > 0 && *m.Limit > 0 {
				// v2 limits swap alone; the spec's swap is memory+swap.
				add("memory", write{"memory.swap", "memory.swap.max", strconv.FormatInt(max(*m.Swap-*m.Limit, 0), 10), true})
			}
		} else {
			if m.Limit != nil {
				add("memory", write{"memory.limit", "memory.limit_in_bytes", strconv.FormatInt(*m.Limit, 10), false})
			}
			if m.Reservation != nil {
				add("memory", write{"memory.reservation", "memory.soft_limit_in_bytes", strconv.FormatInt(*m.Reservation, 10), false})
			}
			if m.Swap != nil {
				add("memory", write{"memory.swap", "memory.memsw.limit_in_bytes", strconv.FormatInt(*m.Swap, 10), true})
			}
			if m.Swappiness != nil && *m.Swappiness <= 100 {
				add("memory", write{"memory.swappiness", "memory.swappiness", strconv.FormatUint(*m.Swappiness, 10), true})
			}
		}
	}
	if c := r.CPU; c != nil {
		if v2 {
			if c.Shares != nil && *c.Shares > 0 {
				add("cpu", write{"cpu.shares", "cpu.weight", strconv.FormatUint(sharesToWeight(*c.Shares), 10), true})
			}
			if c.Quota != nil || c.Period != nil {
				quota, period := "max", uint64(100000)
				if c.Quota != nil && *c.Quota > 0 {
					quota = strconv.FormatInt(*c.Quota, 10)
				}
				if c.Period != nil && *c.Period > 0 {
					period = *c.Period
				}
				add("cpu", write{"cpu.quota", "cpu.max", quota + " " + strconv.FormatUint(period, 10), true})
			}
		} else {
			if c.Shares != nil && *c.Shares > 0 {
				add("cpu", write{"cpu.shares", "cpu.shares", strconv.FormatUint(*c.Shares, 10), false})
			}
			// The period first: a quota is checked against it.
			if c.Period != nil && *c.Period > 0 {
				add("cpu", write{"cpu.period", "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10), false})
			}
			if c.Quota != nil && *c.Quota != 0 {
				add("cpu", write{"cpu.quota", "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10), false})
			}
		}
		if c.Cpus != "" {
			add("cpuset", write{"cpu.cpus", "cpuset.cpus", c.Cpus, false})
		}
		if c.Mems != "" {
			add("cpuset", write{"cpu.mems", "cpuset.mems", c.Mems, false})
		}
	}
	if p := r.Pids; p != nil {
		value := "max"
		if p.Limit > 0 {
			value = strconv.FormatInt(p.Limit, 10)
		}
		add("pids", write{"pids.limit", "pids.max", value, false})
	}
	return out
}

// limit writes a v2 byte limit: -1 (or 0, unset) is "max".
func limit(v int64) string {
	if v <= 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// sharesToWeight converts v1 cpu shares (2..262144) to a v2 cpu weight
// (1..10000), as runc does.
func sharesToWeight(shares uint64) uint64 {
	if shares < 2 {
		shares = 2
	}
	return 1 + ((shares-2)*9999)/262142
}
