// Command bench measures runsc against native execution (chroot into the
// same root file system) and runc, round by round, and prints a table of
// medians with ratios, plus the raw numbers as JSON. `make bench` runs it.
//
// Every workload runs in a fresh container. A workload's time is the
// wall time of the whole run minus the median wall time of an empty run
// (/bin/true) of the same runtime, so start-up cost is counted once, in
// the "start" row.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// workload is one measured command.
type workload struct {
	name, desc string
	script     string
	// net subtracts the runtime's empty-run time.
	net bool
}

var workloads = []workload{
	{"start", "run /bin/true: start + teardown", "true", false},
	{"read", "dd 512 MiB file to /dev/null, bs=1M", "dd if=/data/big of=/dev/null bs=1M 2>/dev/null", true},
	{"write", "dd 512 MiB into the root (/tmp), bs=1M, then rm", "dd if=/dev/zero of=/tmp/out bs=1M count=512 2>/dev/null; rm -f /tmp/out", true},
	{"find", "find /tree -type f | wc -l (20,000 files, cold)", "find /tree -type f | wc -l >/dev/null", true},
	{"ls-lR", "ls -lR /tree (cold)", "ls -lR /tree >/dev/null", true},
	{"exec", "500 x /bin/true from sh", "i=0; while [ $i -lt 500 ]; do /bin/true; i=$((i+1)); done", true},
	{"syscall", "dd /dev/zero to /dev/null, bs=1, 2M times", "dd if=/dev/zero of=/dev/null bs=1 count=2000000 2>/dev/null", true},
}

// rootKind is a kind of root file system the workloads run on.
type rootKind struct {
	name, desc string
	// path is the root's host directory.
	path string
}

// runtime runs a script in a fresh container.
type runtime struct {
	name string
	run  func(id, script, root string) (time.Duration, error)
	// bin and flags run its containers (empty for native).
	bin   string
	flags []string
}

// memOverlay is the flag of runsc's memory overlay root mode.
const memOverlay = "--overlay2=root:memory"

func main() {
	rounds := flag.Int("rounds", 5, "rounds (runtimes alternate within each round)")
	runscBin := flag.String("runsc", "bin/runsc", "runsc binary")
	work := flag.String("dir", "/var/tmp/runsc-bench", "work directory (bundle, state)")
	out := flag.String("json", "bench-results.json", "raw results file")
	only := flag.String("only", "", "comma-separated workloads to run (default all)")
	flag.Parse()
	if err := run(*rounds, *runscBin, *work, *out, *only); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(rounds int, runscBin, work, out, only string) error {
	runscBin, _ = filepath.Abs(runscBin)
	bundle := filepath.Join(work, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	if err := makeBundle(rootfs); err != nil {
		return err
	}
	merged, unmount, err := overlayRoot(rootfs, work)
	if err != nil {
		return err
	}
	defer unmount()
	roots := []rootKind{
		{"dir", "a plain directory", rootfs},
		{"overlayfs", "an overlayfs snapshot of it, as containerd and podman mount one", merged},
	}
	rts := []runtime{{name: "native", run: native()}}
	if p, err := exec.LookPath("runc"); err == nil {
		rts = append(rts, ociRuntime("runc", p, filepath.Join(work, "runc-state"), bundle, nil))
	} else {
		fmt.Fprintln(os.Stderr, "bench: runc not found; its column is skipped")
	}
	rts = append(rts,
		ociRuntime("runsc", runscBin, filepath.Join(work, "runsc-state"), bundle, nil),
		ociRuntime("runsc-mem", runscBin, filepath.Join(work, "runsc-state"), bundle, []string{memOverlay}))
	if anchor := os.Getenv("RUNSC_ANCHOR"); anchor != "" {
		if _, err := os.Stat(anchor); err == nil {
			rts = append(rts, ociRuntime("anchor", anchor, filepath.Join(work, "anchor-state"), bundle, nil))
		}
	}
	selected := workloads
	if only != "" {
		selected = nil
		for _, w := range workloads {
			if w.name == "start" || strings.Contains(","+only+",", ","+w.name+",") {
				selected = append(selected, w)
			}
		}
	}
	results := map[string]map[string][]float64{}
	seq := 0
	for r := 0; r < rounds; r++ {
		for _, root := range roots {
			for _, w := range selected {
				if err := writeSpec(bundle, w.script, root.path); err != nil {
					return err
				}
				// The runtime that goes first changes from round
				// to round, so a cost that falls on whoever runs
				// first (file system state left by the previous
				// workload) does not always hit the same one.
				for k := range rts {
					rt := rts[(k+r)%len(rts)]
					// The previous run's dirty pages (a 512 MiB
					// write) are written back first, not during
					// this run.
					syscall.Sync()
					seq++
					d, err := rt.run(fmt.Sprintf("bench-%s-%d", w.name, seq), w.script, root.path)
					if err != nil {
						return fmt.Errorf("%s %s on %s: %w", rt.name, w.name, root.name, err)
					}
					key := root.name + "/" + w.name
					if results[key] == nil {
						results[key] = map[string][]float64{}
					}
					results[key][rt.name] = append(results[key][rt.name], d.Seconds())
				}
			}
		}
		fmt.Fprintf(os.Stderr, "bench: round %d/%d done\n", r+1, rounds)
	}
	var pods []podResult
	for _, rt := range rts {
		if rt.bin != runscBin {
			continue
		}
		for _, root := range roots {
			p := podResult{Runtime: rt.name, Root: root.name}
			if p.Memory, err = idleMemory(rt, filepath.Join(work, "runsc-state"), bundle, root.path); err != nil {
				return err
			}
			if p.Seconds, err = podStart(rt, filepath.Join(work, "runsc-state"), root.path, work); err != nil {
				return err
			}
			pods = append(pods, p)
		}
	}
	return report(roots, selected, rts, results, pods, out)
}

// podResult is a pod measurement of one runsc mode on one root kind.
type podResult struct {
	Runtime, Root string
	// Seconds is the time from creating a pod of 10 containers to all
	// running.
	Seconds float64
	// Memory is the idle footprint of the pod's sandbox and gofer.
	Memory memory
}

// median of xs.
func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratios are the ratio columns printed, numerator over denominator, for
// the runtimes present.
var ratios = [][2]string{
	{"runsc", "native"}, {"runsc", "runc"}, {"runsc-mem", "native"}, {"runsc-mem", "runc"}, {"runc", "native"},
	{"runsc", "anchor"}, {"runsc-mem", "anchor"},
}

// report prints a table per root kind and writes the JSON.
func report(roots []rootKind, ws []workload, rts []runtime, res map[string]map[string][]float64, pods []podResult, out string) error {
	load, _ := os.ReadFile("/proc/loadavg")
	host, _ := os.Hostname()
	fmt.Printf("runsc benchmarks — %s, %s, load average %s\n", host, time.Now().UTC().Format(time.RFC3339), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Println("medians; workload rows exclude start-up (each runtime's empty run is subtracted)")
	fmt.Printf("runsc: write-through root (the default); runsc-mem: %s\n", memOverlay)
	have := map[string]bool{}
	for _, rt := range rts {
		have[rt.name] = true
	}
	medians := map[string]map[string]float64{}
	for _, root := range roots {
		fmt.Printf("\nroot: %s (%s)\n", root.name, root.desc)
		tw := tabwriter.NewWriter(os.Stdout, 6, 1, 2, ' ', tabwriter.AlignRight)
		header := "workload\t"
		for _, rt := range rts {
			header += rt.name + "\t"
		}
		for _, r := range ratios {
			if have[r[0]] && have[r[1]] {
				header += r[0] + "/" + r[1] + "\t"
			}
		}
		fmt.Fprintln(tw, header)
		for _, w := range ws {
			key := root.name + "/" + w.name
			m := map[string]float64{}
			for _, rt := range rts {
				v := median(res[key][rt.name])
				if w.net {
					v -= median(res[root.name+"/start"][rt.name])
					if v < 0.0005 {
						v = 0.0005
					}
				}
				m[rt.name] = v
			}
			medians[key] = m
			row := w.name + "\t"
			for _, rt := range rts {
				row += fmtDur(m[rt.name]) + "\t"
			}
			for _, r := range ratios {
				if have[r[0]] && have[r[1]] {
					row += fmt.Sprintf("%.2fx\t", m[r[0]]/m[r[1]])
				}
			}
			fmt.Fprintln(tw, row)
		}
		tw.Flush()
	}
	fmt.Println("\npods (sandbox container + 9 members, all running sleep):")
	for _, p := range pods {
		fmt.Printf("  %-9s on %-9s create -> all running %s; idle sandbox + gofer RSS %.1f MB, PSS %.1f MB\n",
			p.Runtime, p.Root, fmtDur(p.Seconds), p.Memory.RSS, p.Memory.PSS)
	}
	raw := map[string]any{"results": res, "medians": medians, "pods": pods, "load": strings.TrimSpace(string(load))}
	data, _ := json.MarshalIndent(raw, "", "  ")
	return os.WriteFile(out, data, 0o644)
}

func fmtDur(s float64) string {
	switch {
	case s < 0.01:
		return fmt.Sprintf("%.2fms", s*1000)
	case s < 1:
		return fmt.Sprintf("%.0fms", s*1000)
	}
	return fmt.Sprintf("%.2fs", s)
}

// native runs the script chrooted into the root file system.
func native() func(id, script, root string) (time.Duration, error) {
	return func(id, script, root string) (time.Duration, error) {
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/bin"}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("%v: %s", err, out)
		}
		return time.Since(start), nil
	}
}

// ociRuntime runs the bundle with `BIN --root STATE FLAGS run --bundle B
// ID`.
func ociRuntime(name, bin, state, bundle string, flags []string) runtime {
	run := func(id, script, _ string) (time.Duration, error) {
		args := append(append([]string{"--root", state}, flags...), "run", "--bundle", bundle, id)
		cmd := exec.Command(bin, args...)
		devnull, _ := os.Open(os.DevNull)
		defer devnull.Close()
		cmd.Stdin = devnull
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			exec.Command(bin, "--root", state, "delete", "--force", id).Run()
			return 0, fmt.Errorf("%v: %s", err, out)
		}
		return d, nil
	}
	return runtime{name: name, run: run, bin: bin, flags: flags}
}

// writeSpec writes the bundle's config.json for script, with root as the
// root file system ("" for the bundle's rootfs).
func writeSpec(bundle, script, root string) error {
	if root == "" {
		root = "rootfs"
	}
	spec := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: []string{"/bin/sh", "-c", script}, Env: []string{"PATH=/bin"}, Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"},
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: root},
		Hostname: "bench",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
			{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
		}},
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644)
}

// overlayRoot mounts an overlayfs with rootfs as its lower layer under
// work and returns its merged directory.
func overlayRoot(rootfs, work string) (string, func(), error) {
	base := filepath.Join(work, "overlay")
	upper, wdir, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	syscall.Unmount(merged, syscall.MNT_DETACH)
	os.RemoveAll(base)
	for _, d := range []string{upper, wdir, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", nil, err
		}
	}
	if err := syscall.Mount("overlay", merged, "overlay", 0, "lowerdir="+rootfs+",upperdir="+upper+",workdir="+wdir); err != nil {
		return "", nil, fmt.Errorf("mounting overlayfs root: %w", err)
	}
	return merged, func() { syscall.Unmount(merged, syscall.MNT_DETACH) }, nil
}

// makeDevNodes gives the root file system the device nodes the workloads
// use: the native runs chroot into it without a /dev of their own. A
// node that is not the right device (a regular file made by a redirection
// to a missing /dev/null) is replaced, else the native runs would write
// to disk and look slow.
func makeDevNodes(rootfs string) error {
	for name, minor := range map[string]uint32{"null": 3, "zero": 5} {
		p := filepath.Join(rootfs, "dev", name)
		dev := uint64(1<<8 | minor)
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == dev {
			continue
		}
		os.Remove(p)
		if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int(dev)); err != nil {
			return fmt.Errorf("making %s: %w", p, err)
		}
	}
	return nil
}

// makeBundle builds the root file system once: busybox, a 512 MiB file
// and 200 directories of 100 small files.
func makeBundle(rootfs string) (err error) {
	defer func() {
		if err == nil {
			err = makeDevNodes(rootfs)
		}
	}()
	if _, err := os.Stat(filepath.Join(rootfs, "tree", "d199", "f99")); err == nil {
		return nil
	}
	os.RemoveAll(rootfs)
	if out, err := exec.Command("scripts/mkrootfs.sh", rootfs).CombinedOutput(); err != nil {
		return fmt.Errorf("mkrootfs: %v: %s", err, out)
	}
	os.MkdirAll(filepath.Join(rootfs, "data"), 0o755)
	f, err := os.Create(filepath.Join(rootfs, "data", "big"))
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for i := 0; i < 512; i++ {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	for d := 0; d < 200; d++ {
		dir := filepath.Join(rootfs, "tree", "d"+strconv.Itoa(d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for i := 0; i < 100; i++ {
			if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), []byte("small file\n"), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// detached runs a command that leaves a container running: its output
// goes to a file, since the container keeps the command's stdio (a pipe
// would never reach EOF).
func detached(bin string, args ...string) error {
	f, err := os.CreateTemp("", "runsc-bench-out-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(f.Name())
		return fmt.Errorf("%s %v: %v: %s", bin, args, err, out)
	}
	return nil
}

// memField returns a "Name: N kB" field of a /proc file in MB.
func memField(path, name string) float64 {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	return 0
}

// rss returns VmRSS of pid in MB.
func rss(pid int) float64 { return memField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS") }

// pss returns the proportional set size of pid in MB: shared pages (the
// runsc binary's text, mapped by both sandbox and gofer) counted once.
func pss(pid int) float64 { return memField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss") }

// idleMemory runs a sleeping container of rt on root and sums the RSS
// (and PSS) of its sandbox and gofer.
func idleMemory(rt runtime, state, bundle, root string) (memory, error) {
	if err := writeSpec(bundle, "sleep 1000", root); err != nil {
		return memory{}, err
	}
	id := "bench-idle"
	args := append(append([]string{"--root", state}, rt.flags...), "run", "-d", "--bundle", bundle, id)
	if err := detached(rt.bin, args...); err != nil {
		return memory{}, fmt.Errorf("idle container: %w", err)
	}
	defer exec.Command(rt.bin, "--root", state, "delete", "--force", id).Run()
	time.Sleep(time.Second) // let it settle: this measures idle memory
	var st struct {
		Sandbox struct{ PID int } `json:"sandbox"`
		Gofer   struct{ PID int } `json:"gofer"`
	}
	data, err := os.ReadFile(filepath.Join(state, id, "state.json"))
	if err != nil {
		return memory{}, err
	}
	json.Unmarshal(data, &st)
	return memory{
		RSS: rss(st.Sandbox.PID) + rss(st.Gofer.PID),
		PSS: pss(st.Sandbox.PID) + pss(st.Gofer.PID),
	}, nil
}

// memory is the idle footprint of sandbox and gofer, in MB.
type memory struct{ RSS, PSS float64 }

// podStart creates a pod (sandbox container + 9 members) of rt, each
// container on root, and measures the time until all run.
func podStart(rt runtime, state, root, work string) (float64, error) {
	mk := func(dir string, annotations map[string]string) error {
		os.MkdirAll(dir, 0o755)
		if err := writeSpec(dir, "sleep 1000", root); err != nil {
			return err
		}
		data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		var spec specs.Spec
		json.Unmarshal(data, &spec)
		spec.Annotations = annotations
		data, _ = json.Marshal(&spec)
		return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
	}
	podDir := filepath.Join(work, "pod")
	if err := mk(filepath.Join(podDir, "sandbox"), map[string]string{"io.kubernetes.cri.container-type": "sandbox"}); err != nil {
		return 0, err
	}
	for i := 1; i < 10; i++ {
		if err := mk(filepath.Join(podDir, fmt.Sprintf("c%d", i)), map[string]string{
			"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "bench-pod",
		}); err != nil {
			return 0, err
		}
	}
	runsc := func(args ...string) error {
		return detached(rt.bin, append(append([]string{"--root", state}, rt.flags...), args...)...)
	}
	defer runsc("delete", "--force", "bench-pod")
	start := time.Now()
	if err := runsc("run", "-d", "--bundle", filepath.Join(podDir, "sandbox"), "bench-pod"); err != nil {
		return 0, err
	}
	for i := 1; i < 10; i++ {
		id := fmt.Sprintf("bench-pod-c%d", i)
		if err := runsc("create", "--bundle", filepath.Join(podDir, fmt.Sprintf("c%d", i)), id); err != nil {
			return 0, err
		}
		if err := runsc("start", id); err != nil {
			return 0, err
		}
	}
	return time.Since(start).Seconds(), nil
}
