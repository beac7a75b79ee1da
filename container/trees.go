package container

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/cleanup"
	"github.com/runsc/runsc/fsimpl/fuse9p"
	"github.com/runsc/runsc/gofer"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// goferTrees lists the trees the container's gofer serves: the root file
// system, then every bind mount in spec order but host binds (see
// specutils.HostBind), which openHostBinds opens.
//
// shared maps host sources already served in the pod's sandbox (by the
// sandbox container) to their bind ordinal there; binds of those sources
// are not served again but recorded in the returned map (this spec's
// bind ordinal, from 1, to the sandbox container's), so the sandbox
// binds the same mount and both containers share one page cache (POSIX
// shared memory in a pod's /dev/shm stays coherent).
func goferTrees(spec *specs.Spec, overlay string, shared map[string]int) ([]gofer.Tree, map[int]int, error) {
	trees := []gofer.Tree{{
		Source: spec.Root.Path,
		// Only a root written through is written by the gofer.
		ReadOnly: spec.Root.Readonly || overlay != boot.OverlayNone,
	}}
	reuse := map[int]int{}
	ordinal := 0
	for i, m := range spec.Mounts {
		if !specutils.ServedBind(spec, m) {
			continue
		}
		ordinal++
		if k, ok := shared[bindKey(m)]; ok {
			reuse[ordinal] = k
			continue
		}
		if !filepath.IsAbs(m.Source) {
			return nil, nil, fmt.Errorf("config.json: mounts[%d].source %q: must be absolute after bundle resolution", i, m.Source)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return nil, nil, fmt.Errorf("config.json: mounts[%d].source: %w", i, err)
		}
		t := gofer.Tree{Source: m.Source}
		for _, o := range m.Options {
			if o == "rbind" {
				t.Recursive = true
			}
		}
		t.ReadOnly, t.TopReadOnly = specutils.BindReadOnly(m)
		t.Propagate = specutils.BindPropagates(m)
		trees = append(trees, t)
	}
	return trees, reuse, nil
}

// bindSources maps the served bind mounts of spec, by bindKey, to their
// ordinal (from 1).
func bindSources(spec *specs.Spec) map[string]int {
	out := map[string]int{}
	ordinal := 0
	for _, m := range spec.Mounts {
		if specutils.ServedBind(spec, m) {
			ordinal++
			if _, dup := out[bindKey(m)]; !dup {
				out[bindKey(m)] = ordinal
			}
		}
	}
	return out
}

// bindKey identifies a bind mount's gofer tree: its cleaned source and
// how it is served (read-only or not, recursively or not, with which
// id mappings). Two binds
// share a tree only if they agree on all of it: a pod member's read-only
// bind is never served by the sandbox container's writable tree.
func bindKey(m specs.Mount) string {
	ro, top := specutils.BindReadOnly(m)
	rec := false
	for _, o := range m.Options {
		rec = rec || o == "rbind"
	}
	return fmt.Sprintf("%s\x00ro=%v,top=%v,rec=%v,prop=%v,ids=%v/%v", filepath.Clean(m.Source), ro, top, rec, specutils.BindPropagates(m), m.UIDMappings, m.GIDMappings)
}

// startGofer starts the gofer for trees and returns it with the files
// the sandbox mounts them with, laid out as boot.CreateArgs says: the
// sandbox ends of the 9P connections, then for each tree a /dev/fuse
// descriptor and a FUSE mount made on it here, detached (see
// fuse9p.MakeMount): the mounts belong to this process's user namespace,
// so the gofer may register passthrough files on them whatever the
// sandbox's. The gofer gets every tree's /dev/fuse too, for
// passthrough.
//
// exe, if not nil, is the sealed copy of runsc the sandbox started from:
// the gofer starts from it too, so that the two share the binary's pages.
func startGofer(cfg Config, trees []gofer.Tree, exe *exeCopy) (_ *exec.Cmd, _ []*os.File, err error) {
	var goferEnds, sandboxEnds, fuses []*os.File
	defer func() { closeAll(goferEnds) }()
	var cu cleanup.Cleanup
	defer cu.Clean()
	cu.Add(func() { closeAll(sandboxEnds); closeAll(fuses) })
	for range trees {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("gofer socket pair: %w", err)
		}
		sandboxEnds = append(sandboxEnds, os.NewFile(uintptr(fds[0]), "sandbox-9p"))
		goferEnds = append(goferEnds, os.NewFile(uintptr(fds[1]), "gofer-9p"))
	}
	for i, t := range trees {
		dev, mnt, err := fuse9p.MakeMount("runsc-9p", i == 0 && t.ReadOnly)
		if err != nil {
			return nil, nil, fmt.Errorf("FUSE mount of tree %d: %w", i, err)
		}
		fuses = append(fuses, dev, mnt)
	}
	passthrough := make([]*os.File, len(trees))
	for i := range trees {
		passthrough[i] = fuses[2*i]
	}
	cmd := gofer.Command(cfg.Exe, cfg.GlobalArgs, trees, goferEnds, passthrough)
	if exe != nil {
		f, err := exe.dup()
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		cmd.Path = "/proc/self/fd/" + strconv.Itoa(3+len(cmd.ExtraFiles))
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	if err := gofer.Start(cmd); err != nil {
		return nil, nil, fmt.Errorf("starting gofer: %w", err)
	}
	cu.Release()
	return cmd, append(sandboxEnds, fuses...), nil
}

// makeMountPoints makes spec's missing mount points in its root on the
// host when the root is written through and read-only: the gofer then
// serves it read-only and nothing in the sandbox layers over it, so the
// container's init could not (see boot.MakeMountPoints).
func makeMountPoints(spec *specs.Spec, overlay string) error {
	if overlay != boot.OverlayNone || !spec.Root.Readonly {
		return nil
	}
	return boot.MakeMountPoints(spec.Root.Path, spec)
}

// overlayfsMagic is OVERLAYFS_SUPER_MAGIC, ecryptfsMagic ECRYPTFS_SUPER_MAGIC:
// the file systems stacked on others that a tree may be on.
const (
	overlayfsMagic = 0x794c7630
	ecryptfsMagic  = 0xf15f
)

// stackedTrees tells, for each tree, whether its source is on a stacked
// file system (see boot.CreateArgs.Stacked).
func stackedTrees(trees []gofer.Tree) []bool {
	out := make([]bool, len(trees))
	for i, t := range trees {
		var st unix.Statfs_t
		if unix.Statfs(t.Source, &st) == nil {
			out[i] = st.Type == overlayfsMagic || st.Type == ecryptfsMagic
		}
	}
	return out
}
