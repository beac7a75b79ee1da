// Package cgroup puts a container's processes in a cgroup of their own
// and applies the spec's linux.resources to it, as runc does with its
// cgroupfs driver: on cgroup v1 (one directory per controller
// hierarchy, hybrid hosts included) and on the unified v2 hierarchy.
// The container's init is placed before it runs anything of the
// container's, and every process exec'd into the container joins it.
package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// Cgroup is a container's cgroup: one directory per v1 controller
// hierarchy, or one directory of the v2 hierarchy (under the key "").
type Cgroup struct {
	// Paths maps each controller hierarchy (its mount's controllers,
	// e.g. "memory" or "cpu,cpuacct"; "" for v2) to the cgroup's
	// directory in it.
	Paths map[string]string `json:"paths"`
	// Prune is how many levels above the cgroup runsc named itself
	// (the default path's /runsc/<instance>): Destroy removes them too
	// once empty, so that they do not pile up, one per --root.
	Prune int `json:"prune,omitempty"`
}

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	// key names it: the v1 controllers of the mount, "" for v2.
	key string
	// mount is where it is mounted; self is this process's cgroup in it.
	mount, self string
}

// hierarchies lists the cgroup hierarchies this process sees: every v1
// controller mount (named ones, like systemd's, excluded), or the v2
// mount alone when it is the only one (a pure v2 host). On a hybrid host
// the v2 mount holds no controller and is left out.
func hierarchies() ([]hierarchy, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("listing cgroup mounts: %w", err)
	}
	var v1 []hierarchy
	var v2 *hierarchy
	for _, m := range procfs.ParseMountinfo(data) {
		switch m.FSType {
		case "cgroup2":
			if v2 == nil {
				v2 = &hierarchy{key: "", mount: m.Point, self: own[""]}
			}
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(m.Super, ",") {
				if knownControllers[o] {
					ctrls = append(ctrls, o)
				}
			}
			if len(ctrls) == 0 {
				continue
			}
			key := strings.Join(ctrls, ",")
			v1 = append(v1, hierarchy{key: key, mount: m.Point, self: own[key]})
		}
	}
	if len(v1) > 0 {
		// Hybrid: controllers the v1 mounts lack may be on the v2
		// one (hugetlb on this project's machines).
		if v2 != nil {
			if ctrls := v2Controllers(v2.mount); len(ctrls) > 0 {
				v2.key = unifiedPrefix + strings.Join(ctrls, ",")
				v1 = append(v1, *v2)
			}
		}
		return v1, nil
	}
	if v2 != nil {
		return []hierarchy{*v2}, nil
	}
	return nil, errors.New("no cgroup file system is mounted")
}

// knownControllers are the v1 controllers runsc manages or places
// processes in.
var knownControllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "pids": true,
	"blkio": true, "devices": true, "freezer": true, "hugetlb": true,
	"net_cls": true, "net_prio": true, "perf_event": true, "rdma": true,
}

// ownCgroups reads /proc/self/cgroup: this process's cgroup in each
// hierarchy, by controllers ("" for v2).
func ownCgroups() (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("reading own cgroups: %w", err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		out[parts[1]] = parts[2]
	}
	return out, nil
}

// Resolve returns the cgroup of linux.cgroupsPath: an absolute path is
// taken from each hierarchy's root, a relative one from this process's
// own cgroup there (as runc), and an empty one is /runsc/<instance>/<id>,
// instance naming the runsc --root (two roots may hold the same ID). The path
// may not climb out of the hierarchy (..). A systemd-style
// "slice:prefix:name" is, as with runc's cgroupfs driver, a relative path
// like any other, unless the caller converted it (see SystemdPath).
func Resolve(cgroupsPath, instance, id string) (*Cgroup, error) {
	prune := 0
	if cgroupsPath == "" {
		cgroupsPath = "/runsc/" + instance + "/" + id
		prune = 1
	}
	for _, part := range strings.Split(cgroupsPath, "/") {
		if part == ".." {
			return nil, fmt.Errorf("config.json: linux.cgroupsPath %q: must not contain ..", cgroupsPath)
		}
	}
	hs, err := hierarchies()
	if err != nil {
		return nil, err
	}
	c := &Cgroup{Paths: map[string]string{}, Prune: prune}
	for _, h := range hs {
		rel := cgroupsPath
		if !filepath.IsAbs(rel) {
			rel = filepath.Join(h.self, rel)
		}
		rel = filepath.Clean("/" + rel)
		// The container's cgroup is its own: deleting it kills what
		// is left in it. It may not be the root, nor runsc's own
		// cgroup or one above it.
		if self := filepath.Clean("/" + h.self); rel == "/" || rel == self || strings.HasPrefix(self, rel+"/") {
			return nil, fmt.Errorf("config.json: linux.cgroupsPath %q: names the cgroup %s, which holds more than the container", cgroupsPath, rel)
		}
		c.Paths[h.key] = filepath.Join(h.mount, rel)
	}
	return c, nil
}

// maxPrune bounds Cgroup.Prune, read back from a state file.
const maxPrune = 1

// Create makes the cgroup's directories (with a cpuset, copying the
// parent's cpus and mems into each new level, which v1 requires before
// a process may join) and, on v2, enables the controllers it needs in
// the levels above.
func (c *Cgroup) Create() error {
	for key, dir := range c.Paths {
		if err := makeDirs(key, dir); err != nil {
			return err
		}
	}
	return nil
}

// makeDirs makes dir and its missing parents in hierarchy key.
func makeDirs(key, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := makeDirs(key, parent); err != nil {
		return err
	}
	if isV2(key) {
		// v2: the parent must delegate the controllers to children.
		enableControllers(parent)
	}
	err := os.Mkdir(dir, 0o755)
	for try := 0; errors.Is(err, os.ErrNotExist) && try < 5; try++ {
		// A Destroy pruned the parent meanwhile: make it again.
		if err = makeDirs(key, parent); err == nil {
			err = os.Mkdir(dir, 0o755)
		}
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("making cgroup %s: %w", dir, err)
	}
	if hasController(key, "cpuset") {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if cur, err := os.ReadFile(filepath.Join(dir, f)); err == nil && strings.TrimSpace(string(cur)) == "" {
				if v, err := os.ReadFile(filepath.Join(parent, f)); err == nil {
					os.WriteFile(filepath.Join(dir, f), v, 0)
				}
			}
		}
	}
	return nil
}

// enableControllers enables, in v2 cgroup dir, every controller it has
// for its children (best effort: a controller that cannot be delegated
// is simply not limited).
func enableControllers(dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return
	}
	for _, ctrl := range strings.Fields(string(data)) {
		os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+ctrl), 0)
	}
}

// unifiedPrefix starts the key of the v2 hierarchy of a hybrid host,
// followed by the controllers it holds ("unified:hugetlb"); on a pure
// v2 host the key is "".
const unifiedPrefix = "unified:"

// isV2 reports whether hierarchy key is a v2 one.
func isV2(key string) bool { return key == "" || strings.HasPrefix(key, unifiedPrefix) }

// v2Controllers lists the controllers of the v2 hierarchy mounted at
// mount that no v1 hierarchy holds (those held by a v1 one are not
// available on v2).
func v2Controllers(mount string) []string {
	data, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(data))
}

// hasController reports whether hierarchy key holds ctrl (pure v2 holds
// every controller).
func hasController(key, ctrl string) bool {
	if key == "" {
		return true
	}
	for _, c := range strings.Split(strings.TrimPrefix(key, unifiedPrefix), ",") {
		if c == ctrl {
			return true
		}
	}
	return false
}

// Add moves process pid into the cgroup.
func (c *Cgroup) Add(pid int) error {
	for _, dir := range c.Paths {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(pid)), 0); err != nil {
			return fmt.Errorf("adding process %d to cgroup %s: %w", pid, dir, err)
		}
	}
	return nil
}

// Pids lists the processes in the cgroup (host pids), from every
// hierarchy.
func (c *Cgroup) Pids() []int {
	seen := map[int]bool{}
	var out []int
	for _, dir := range c.Paths {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out
}

// Destroy kills whatever is left in the cgroup (a process of a container
// that shares another's pid namespace does not die with its init), then
// removes its directories, waiting briefly for processes that are still
// exiting to leave them. Levels above it, shared with other containers,
// are left.
func (c *Cgroup) Destroy() error {
	// A frozen process dies of SIGKILL only once thawed (v1).
	c.Freeze(false)
	c.Signal(unix.SIGKILL)
	var errs []error
	for _, dir := range c.Paths {
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			err = unix.Rmdir(dir)
			if err == nil || errors.Is(err, unix.ENOENT) {
				err = nil
				break
			}
			if err != unix.EBUSY || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dir, err))
			continue
		}
		// Another container's cgroup keeps a level busy: it stays.
		up := dir
		for range min(c.Prune, maxPrune) {
			up = filepath.Dir(up)
			if unix.Rmdir(up) != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// Signal sends sig to every process in the cgroup. Each is pinned with
// a pidfd and checked to be a member still, so that a pid reused since
// the listing is not signalled.
func (c *Cgroup) Signal(sig unix.Signal) {
	fds := map[int]int{}
	for _, pid := range c.Pids() {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			fds[pid] = fd
		}
	}
	// Listed again once every pid is pinned: those still members are
	// the processes the pidfds name.
	for _, pid := range c.Pids() {
		if fd, ok := fds[pid]; ok {
			unix.PidfdSendSignal(fd, sig, nil, 0)
		}
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// Set applies linux.resources: memory, cpu, cpuset and pids limits.
func (c *Cgroup) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := c.checkControllers(r); err != nil {
		return err
	}
	for key, dir := range c.Paths {
		ws := writes(key, r)
		for i := 0; i < len(ws); i++ {
			w := ws[i]
			err := os.WriteFile(filepath.Join(dir, w.file), []byte(w.value), 0)
			if errors.Is(err, unix.EINVAL) && w.file == "memory.limit_in_bytes" {
				// Raised past the memory+swap limit: that one
				// first (v1 keeps memory <= memory+swap).
				if j := slices.IndexFunc(ws[i+1:], func(w write) bool { return w.file == "memory.memsw.limit_in_bytes" }); j >= 0 {
					ws[i], ws[i+1+j] = ws[i+1+j], ws[i]
					i--
					continue
				}
			}
			if err != nil {
				if errors.Is(err, os.ErrNotExist) && w.optional {
					continue
				}
				return fmt.Errorf("linux.resources.%s: writing %s to %s: %w", w.field, w.value, filepath.Join(dir, w.file), err)
			}
		}
		if key == "" && r.Devices != nil {
			// Pure v2 (a hybrid host's v1 devices controller
			// has them): see deviceWrites for when they are given.
			if err := setV2Devices(dir, r.Devices); err != nil {
				return err
			}
		}
	}
	return nil
}

// SystemdPath turns a systemd-style linux.cgroupsPath,
// "slice:prefix:name" (runc's --systemd-cgroup form), into the cgroup
// path systemd gives that unit: the slice expanded into its parents
// ("a-b.slice" is /a.slice/a-b.slice; "" is system.slice) and the scope
// "<prefix>-<name>.scope" in it ("<name>" alone when the prefix is
// empty, a slice of its own when name ends in .slice). runsc then makes
// it directly in the cgroup file system: it does not ask systemd over
// D-Bus, as runc's systemd driver does.
func SystemdPath(cgroupsPath string) (string, error) {
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 {
		return "", fmt.Errorf("config.json: linux.cgroupsPath %q: with --systemd-cgroup, want slice:prefix:name", cgroupsPath)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	if !strings.HasSuffix(slice, ".slice") || strings.ContainsAny(slice+prefix+name, "/") || name == "" {
		return "", fmt.Errorf("config.json: linux.cgroupsPath %q: want a slice ending in .slice, no /, and a name", cgroupsPath)
	}
	var dir string
	if slice != "-.slice" {
		stem := strings.TrimSuffix(slice, ".slice")
		if strings.HasPrefix(stem, "-") || strings.HasSuffix(stem, "-") || strings.Contains(stem, "--") {
			return "", fmt.Errorf("config.json: linux.cgroupsPath %q: slice %q is not a valid slice name", cgroupsPath, slice)
		}
		words := strings.Split(stem, "-")
		for i := range words {
			dir += "/" + strings.Join(words[:i+1], "-") + ".slice"
		}
	}
	unit := name
	switch {
	case strings.HasSuffix(name, ".slice"):
	case prefix != "":
		unit = prefix + "-" + name + ".scope"
	default:
		unit = name + ".scope"
	}
	return dir + "/" + unit, nil
}

// checkControllers fails, as runc does, when r asks for limits of a v1
// controller that no hierarchy of this host holds (net_cls is often not
// mounted): they would not be applied. v2 controllers a parent does not
// delegate show as a missing file instead.
func (c *Cgroup) checkControllers(r *specs.LinuxResources) error {
	need := map[string]string{}
	if b := r.BlockIO; b != nil && (b.Weight != nil || b.LeafWeight != nil || len(b.WeightDevice) > 0 || len(b.ThrottleReadBpsDevice)+len(b.ThrottleWriteBpsDevice)+len(b.ThrottleReadIOPSDevice)+len(b.ThrottleWriteIOPSDevice) > 0) {
		need["blkio"] = "blockIO"
	}
	if len(r.HugepageLimits) > 0 {
		need["hugetlb"] = "hugepageLimits"
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			need["net_cls"] = "network.classID"
		}
		if len(n.Priorities) > 0 {
			need["net_prio"] = "network.priorities"
		}
	}
	for ctrl, field := range need {
		found := false
		for key := range c.Paths {
			if key == "" || hasController(key, ctrl) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("linux.resources.%s: this host has no %s cgroup controller", field, ctrl)
		}
	}
	return nil
}
