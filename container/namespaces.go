package container

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
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
// mount namespace of its own; and the runtime's pid namespace (a spec
// that lists none), since the sandbox is pid 1 of the pod's and every
// container process lives there.
func checkNamespaces(spec *specs.Spec) error {
	mnt, ownMnt := specNamespace(spec, specs.MountNamespace)
	switch {
	case !ownMnt:
		return fmt.Errorf("config.json: linux.namespaces: a mount namespace is required: a sandboxed container cannot share the runtime's (its root is assembled by the sandbox in one of its own)")
	case mnt != "":
		return fmt.Errorf("config.json: linux.namespaces mount path %q: a sandboxed container cannot join another mount namespace (its root is assembled by the sandbox in one of its own)", mnt)
	}
	if _, ownPID := specNamespace(spec, specs.PIDNamespace); !ownPID {
		return fmt.Errorf("config.json: linux.namespaces: a pid namespace is required: a sandboxed container cannot share the runtime's (every container process lives in its pod's, under the sandbox)")
	}
	return nil
}
