package cgroup

import (
	"fmt"
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
	v2 := isV2(key)
	if m := r.Memory; m != nil {
		if v2 {
			if m.Limit != nil {
				add("memory", write{"memory.limit", "memory.max", limit(*m.Limit), false})
			}
			if m.Reservation != nil {
				add("memory", write{"memory.reservation", "memory.low", limit(*m.Reservation), false})
			}
			switch {
			case m.Swap != nil && *m.Swap == -1:
				add("memory", write{"memory.swap", "memory.swap.max", "max", true})
			case m.Swap != nil && m.Limit != nil && *m.Swap > 0 && *m.Limit > 0:
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
			if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
				add("memory", write{"memory.disableOOMKiller", "memory.oom_control", "1", false})
			}
		}
		// memory.kernel and kernelTCP are ignored, as by runc: the
		// kernel no longer limits kernel memory apart.
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
			if c.RealtimePeriod != nil && *c.RealtimePeriod > 0 {
				add("cpu", write{"cpu.realtimePeriod", "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10), true})
			}
			if c.RealtimeRuntime != nil {
				add("cpu", write{"cpu.realtimeRuntime", "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10), true})
			}
		}
		if c.Cpus != "" {
			add("cpuset", write{"cpu.cpus", "cpuset.cpus", c.Cpus, false})
		}
		if c.Mems != "" {
			add("cpuset", write{"cpu.mems", "cpuset.mems", c.Mems, false})
		}
	}
	if b := r.BlockIO; b != nil {
		add("blkio", blkioWrites(v2, b)...)
	}
	for i, h := range r.HugepageLimits {
		file := "hugetlb." + h.Pagesize + ".limit_in_bytes"
		if v2 {
			file = "hugetlb." + h.Pagesize + ".max"
		}
		add("hugetlb", write{fmt.Sprintf("hugepageLimits[%d]", i), file, strconv.FormatUint(h.Limit, 10), false})
	}
	if n := r.Network; n != nil && !v2 {
		if n.ClassID != nil {
			add("net_cls", write{"network.classID", "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10), false})
		}
		for i, p := range n.Priorities {
			add("net_prio", write{fmt.Sprintf("network.priorities[%d]", i), "net_prio.ifpriomap", p.Name + " " + strconv.FormatUint(uint64(p.Priority), 10), false})
		}
	}
	if !v2 && r.Devices != nil {
		// A create always gives them (none: runc's defaults alone);
		// an update only if it changes them.
		add("devices", deviceWrites(r.Devices)...)
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

// blkioWrites applies linux.resources.blockIO: weights and throttles.
func blkioWrites(v2 bool, b *specs.LinuxBlockIO) []write {
	var out []write
	dev := func(major, minor int64) string { return fmt.Sprintf("%d:%d", major, minor) }
	if b.Weight != nil && *b.Weight > 0 {
		w := strconv.FormatUint(uint64(*b.Weight), 10)
		if v2 {
			// io.weight is 1..10000; blkio's 10..1000 maps as runc does.
			w2 := 1 + (max(uint64(*b.Weight), 10)-10)*9999/990
			out = append(out, write{"blockIO.weight", "io.bfq.weight", w, true},
				write{"blockIO.weight", "io.weight", "default " + strconv.FormatUint(w2, 10), true})
		} else {
			// blkio.weight with CFQ, blkio.bfq.weight with BFQ:
			// whichever the kernel has.
			out = append(out, write{"blockIO.weight", "blkio.weight", w, true}, write{"blockIO.weight", "blkio.bfq.weight", w, true})
		}
	}
	if !v2 {
		if b.LeafWeight != nil && *b.LeafWeight > 0 {
			out = append(out, write{"blockIO.leafWeight", "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10), true})
		}
		for i, d := range b.WeightDevice {
			if d.Weight != nil {
				out = append(out, write{fmt.Sprintf("blockIO.weightDevice[%d].weight", i), "blkio.weight_device", fmt.Sprintf("%s %d", dev(d.Major, d.Minor), *d.Weight), true})
			}
			if d.LeafWeight != nil {
				out = append(out, write{fmt.Sprintf("blockIO.weightDevice[%d].leafWeight", i), "blkio.leaf_weight_device", fmt.Sprintf("%s %d", dev(d.Major, d.Minor), *d.LeafWeight), true})
			}
		}
	}
	// Each throttle: its v1 file, or its key in v2's io.max.
	for _, t := range []struct {
		field, v1File, v2Key string
		devs                 []specs.LinuxThrottleDevice
	}{
		{"throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps", b.ThrottleReadBpsDevice},
		{"throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps", b.ThrottleWriteBpsDevice},
		{"throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops", b.ThrottleReadIOPSDevice},
		{"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops", b.ThrottleWriteIOPSDevice},
	} {
		for i, d := range t.devs {
			w := write{fmt.Sprintf("blockIO.%s[%d]", t.field, i), t.v1File, fmt.Sprintf("%s %d", dev(d.Major, d.Minor), d.Rate), false}
			if v2 {
				w.file, w.value = "io.max", fmt.Sprintf("%s %s=%d", dev(d.Major, d.Minor), t.v2Key, d.Rate)
			}
			out = append(out, w)
		}
	}
	return out
}

// defaultDevices are the rules runc appends to every container's: the
// device nodes every container has (see boot's makeDevices), and mknod
// of any node (which the kernel still refuses in a user namespace).
var defaultDevices = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Access: "m"},
	{Allow: true, Type: "b", Access: "m"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},
}

func i64(v int64) *int64 { return &v }

// deviceWrites applies linux.resources.devices on v1 as runc does: from
// no device allowed, each rule in order, then the default devices.
func deviceWrites(rules []specs.LinuxDeviceCgroup) []write {
	out := []write{{"devices", "devices.deny", "a *:* rwm", false}}
	for i, r := range append(append([]specs.LinuxDeviceCgroup{}, rules...), defaultDevices...) {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		field := fmt.Sprintf("devices[%d]", i)
		if i >= len(rules) {
			field = "devices (runc's defaults)"
		}
		out = append(out, write{field, file, deviceRule(r), false})
	}
	return out
}

// deviceRule formats a rule for devices.allow/deny: "c 1:3 rwm", with
// "a" for every type and "*" for any major or minor.
func deviceRule(r specs.LinuxDeviceCgroup) string {
	typ := r.Type
	if typ == "" {
		typ = "a"
	}
	num := func(v *int64) string {
		if v == nil || *v < 0 {
			return "*"
		}
		return strconv.FormatInt(*v, 10)
	}
	access := r.Access
	if access == "" {
		access = "rwm"
	}
	return fmt.Sprintf("%s %s:%s %s", typ, num(r.Major), num(r.Minor), access)
}
