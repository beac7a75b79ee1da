package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/container"
)

func init() {
	register(&command{name: "pause", synopsis: "freeze every process of a container", run: runPause})
	register(&command{name: "resume", synopsis: "thaw a paused container", run: runResume})
	register(&command{name: "update", synopsis: "change a container's resource limits", run: runUpdate})
	register(&command{name: "events", synopsis: "print a container's stats and OOM events as JSON", run: runEvents})
}

func runPause(g *globals, args []string) error {
	c, err := load(g, "pause", args)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Pause()
}

func runResume(g *globals, args []string) error {
	c, err := load(g, "resume", args)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Resume()
}

// updateFlags are runc update's resource flags.
type updateFlags struct {
	resources                              string
	blkioWeight                            uint64
	cpuPeriod, cpuQuota, cpuShares         string
	cpuRTPeriod, cpuRTRuntime              string
	cpusetCPUs, cpusetMems                 string
	memory, memoryReservation, memorySwap  string
	kernelMemory, kernelMemoryTCP, pidsMax string
}

func runUpdate(g *globals, args []string) error {
	fs := newFlagSet("update", "ID")
	var f updateFlags
	fs.StringVar(&f.resources, "resources", "", `a file of linux.resources JSON ("-": standard input); the other flags then may not be given`)
	fs.StringVar(&f.resources, "r", "", "short for --resources")
	fs.Uint64Var(&f.blkioWeight, "blkio-weight", 0, "block I/O weight, 10 to 1000")
	fs.StringVar(&f.cpuPeriod, "cpu-period", "", "CFS period, in microseconds")
	fs.StringVar(&f.cpuQuota, "cpu-quota", "", "CFS quota per period, in microseconds (-1: none)")
	fs.StringVar(&f.cpuShares, "cpu-share", "", "CPU shares")
	fs.StringVar(&f.cpuRTPeriod, "cpu-rt-period", "", "real-time period, in microseconds")
	fs.StringVar(&f.cpuRTRuntime, "cpu-rt-runtime", "", "real-time runtime per period, in microseconds")
	fs.StringVar(&f.cpusetCPUs, "cpuset-cpus", "", "CPUs to run on (0-3, 0,1)")
	fs.StringVar(&f.cpusetMems, "cpuset-mems", "", "memory nodes to use (0-3, 0,1)")
	fs.StringVar(&f.memory, "memory", "", "memory limit (bytes, or with a k, m, g suffix; -1: none)")
	fs.StringVar(&f.memoryReservation, "memory-reservation", "", "memory soft limit")
	fs.StringVar(&f.memorySwap, "memory-swap", "", "memory plus swap limit")
	fs.StringVar(&f.kernelMemory, "kernel-memory", "", "accepted and ignored, as by runc: the kernel no longer limits kernel memory")
	fs.StringVar(&f.kernelMemoryTCP, "kernel-memory-tcp", "", "accepted and ignored, as --kernel-memory")
	fs.StringVar(&f.pidsMax, "pids-limit", "", "maximum number of processes (-1 or 0: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r, err := f.linuxResources(fs)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	c, err := loadArg(g, fs, "update")
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Update(r)
}

// linuxResources builds the update from --resources or the other flags.
func (f *updateFlags) linuxResources(fs *flag.FlagSet) (*specs.LinuxResources, error) {
	given := 0
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name != "resources" && fl.Name != "r" {
			given++
		}
	})
	if f.resources != "" {
		if given > 0 {
			return nil, errors.New("--resources: no other resource flag may be given with it")
		}
		return readResources(f.resources)
	}
	r := &specs.LinuxResources{CPU: &specs.LinuxCPU{}, Memory: &specs.LinuxMemory{}}
	var errs []error
	u64 := func(name, v string) *uint64 {
		if v == "" {
			return nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s %q: want a non-negative number", name, v))
		}
		return &n
	}
	i64 := func(name, v string) *int64 {
		if v == "" {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s %q: want a number", name, v))
		}
		return &n
	}
	bytes := func(name, v string) *int64 {
		if v == "" {
			return nil
		}
		n, err := parseBytes(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s %q: %w", name, v, err))
		}
		return &n
	}
	r.CPU.Period, r.CPU.Quota, r.CPU.Shares = u64("cpu-period", f.cpuPeriod), i64("cpu-quota", f.cpuQuota), u64("cpu-share", f.cpuShares)
	r.CPU.RealtimePeriod, r.CPU.RealtimeRuntime = u64("cpu-rt-period", f.cpuRTPeriod), i64("cpu-rt-runtime", f.cpuRTRuntime)
	r.CPU.Cpus, r.CPU.Mems = f.cpusetCPUs, f.cpusetMems
	r.Memory.Limit, r.Memory.Reservation, r.Memory.Swap = bytes("memory", f.memory), bytes("memory-reservation", f.memoryReservation), bytes("memory-swap", f.memorySwap)
	bytes("kernel-memory", f.kernelMemory)
	bytes("kernel-memory-tcp", f.kernelMemoryTCP)
	if p := i64("pids-limit", f.pidsMax); p != nil {
		r.Pids = &specs.LinuxPids{Limit: *p}
	}
	if f.blkioWeight != 0 {
		if f.blkioWeight < 10 || f.blkioWeight > 1000 {
			errs = append(errs, fmt.Errorf("--blkio-weight %d: want 10 to 1000", f.blkioWeight))
		}
		w := uint16(f.blkioWeight)
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return r, nil
}

// readResources reads linux.resources JSON from a file or, for "-",
// standard input (as containerd's shim sends it).
func readResources(path string) (*specs.LinuxResources, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("--resources %s: %w", path, err)
	}
	var r specs.LinuxResources
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("--resources %s: not linux.resources JSON: %w", path, err)
	}
	return &r, nil
}

// parseBytes parses a size: a number of bytes, or with a k, m, g or t
// suffix (powers of 1024, an optional trailing b, any case); -1 means no
// limit.
func parseBytes(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	v := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "b")
	mult := int64(1)
	if n := len(v); n > 0 {
		if i := strings.IndexByte("kmgt", v[n-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			v = v[:n-1]
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New("want a size in bytes, optionally with a k, m, g or t suffix, or -1")
	}
	return n * mult, nil
}

// event is one line of `runsc events`, as runc prints it.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// oomPoll is how often `runsc events` looks for OOM kills.
const oomPoll = 100 * time.Millisecond

func runEvents(g *globals, args []string) error {
	fs := newFlagSet("events", "ID")
	stats := fs.Bool("stats", false, "print the container's stats once and exit")
	interval := fs.Duration("interval", 5*time.Second, "how often to print stats")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *interval <= 0 {
		return fmt.Errorf("events: --interval %v: must be positive", *interval)
	}
	c, err := loadArg(g, fs, "events")
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	st, err := c.Stats()
	if err != nil {
		c.Close()
		return err
	}
	if *stats {
		c.Close()
		return enc.Encode(event{Type: "stats", ID: c.ID, Data: st})
	}
	// The lock is not held while streaming: each step reloads.
	id, cg := c.ID, c.Cgroup
	c.Close()
	ooms := cg.OOMKills()
	next := time.Now()
	for ; ; time.Sleep(oomPoll) {
		if n := cg.OOMKills(); n > ooms {
			ooms = n
			if err := enc.Encode(event{Type: "oom", ID: id}); err != nil {
				return err
			}
		}
		if time.Now().Before(next) {
			continue
		}
		next = time.Now().Add(*interval)
		c, err := container.Load(g.Root, id)
		if err != nil {
			// Deleted: the stream ends.
			return nil
		}
		err = c.Refresh()
		stopped := c.Status == boot.StatusStopped
		c.Close()
		if err != nil || stopped {
			return err
		}
		if err := enc.Encode(event{Type: "stats", ID: id, Data: cg.Stats()}); err != nil {
			return err
		}
	}
}
