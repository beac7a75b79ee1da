package container

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// setJoinedUTSNames sets the spec's hostname and domainname in the uts
// namespace at path, which a new sandbox joins (linux.namespaces uts
// path). That namespace belongs to a user namespace other than the
// pod's, where the container's init has no right to name it, so this
// process (the runtime, as runc) names it, on a thread of its own that
// joins it.
func setJoinedUTSNames(path string, spec *specs.Spec) error {
	if spec.Hostname == "" && spec.Domainname == "" {
		return nil
	}
	f, err := openNamespace(path, specs.UTSNamespace, unix.CLONE_NEWUTS)
	if err != nil {
		return err
	}
	defer f.Close()
	return onDiscardedThread(func() error {
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWUTS); err != nil {
			return fmt.Errorf("config.json: linux.namespaces uts path %q: joining: %w", path, err)
		}
		return boot.SetUTSNames(spec)
	})
}

// checkNamespaces refuses the namespaces a sandboxed container cannot
// have: the runtime's mount namespace (a spec that lists none) or
// another one by path, since its root is assembled by the sandbox in a
// mount namespace of its own.
func checkNamespaces(spec *specs.Spec) error {
	mnt, ownMnt := specNamespace(spec, specs.MountNamespace)
	switch {
	case !ownMnt:
		return fmt.Errorf("config.json: linux.namespaces: a mount namespace is required: a sandboxed container cannot share the runtime's (its root is assembled by the sandbox in one of its own)")
	case mnt != "":
		return fmt.Errorf("config.json: linux.namespaces mount path %q: a sandboxed container cannot join another mount namespace (its root is assembled by the sandbox in one of its own)", mnt)
	}
	return nil
}

// hostPID reports whether the spec shares the runtime's pid namespace
// (--pid=host): it lists none, or names the runtime's by path. A pod's
// sandbox container that does is the pod's whole pid namespace: the
// sandbox runs there (not as pid 1 of a pid namespace of its own), and
// so do the pod's containers that list no pid namespace either; those
// that list one get one of their own, nested in the host's. The pod's
// processes then do not die with the sandbox: deleting a container
// kills what is left in its cgroup.
func hostPID(spec *specs.Spec) bool {
	path, own := specNamespace(spec, specs.PIDNamespace)
	if !own {
		return true
	}
	if path == "" {
		return false
	}
	var got unix.Stat_t
	return unix.Stat(path, &got) == nil && isRuntimeNS(got, "pid")
}

// isRuntimeNS reports whether st, a stat of a namespace file, is this
// process's namespace of that name (as under /proc/self/ns).
func isRuntimeNS(st unix.Stat_t, name string) bool {
	var ours unix.Stat_t
	return unix.Stat("/proc/self/ns/"+name, &ours) == nil && st.Dev == ours.Dev && st.Ino == ours.Ino
}

// sandboxPIDNS says which pid namespace a new pod's sandbox runs in, from
// its sandbox container's spec: a new one, of which it is pid 1 (joined
// false); or an existing one (joined), the host's (path "": see hostPID)
// or the one the spec names by path. The sandbox container runs there
// too; so do the pod's other containers that name it by path, or, for
// the host's, that list no pid namespace (see checkPodPID).
func sandboxPIDNS(spec *specs.Spec) (path string, joined bool) {
	path, own := specNamespace(spec, specs.PIDNamespace)
	switch {
	case !own || path != "" && hostPID(spec):
		return "", true
	case path == "":
		return "", false
	}
	return path, true
}

// checkPodPID checks that a container joining the pod whose sandbox
// pidfd names shares the host's pid namespace only if the pod does: a
// pod with a pid namespace of its own cannot hold a process in the
// host's.
func checkPodPID(spec *specs.Spec, sandbox *os.File) error {
	if !hostPID(spec) {
		return nil
	}
	pid, err := procfs.PidfdPid(int(sandbox.Fd()))
	if err != nil || pid <= 0 {
		return fmt.Errorf("the pod's sandbox is gone")
	}
	var got unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/pid", pid), &got); err != nil {
		return fmt.Errorf("the pod's sandbox: %w", err)
	}
	if !isRuntimeNS(got, "pid") {
		return fmt.Errorf("config.json: linux.namespaces: shares the host's pid namespace, but its pod has a pid namespace of its own (give the pod's sandbox container no pid namespace for a pod in the host's)")
	}
	return nil
}
