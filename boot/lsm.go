package boot

import (
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// applyExecLabels sets the AppArmor profile and SELinux label the
// container's process gets at its exec, as runc does: written now, while
// the init still sees a /proc (the sandbox's), they apply at the init's
// next execve, which is the process's. The creator leaves them in the
// spec only if the host enforces that LSM (see StripUnenforcedLSM).
func applyExecLabels(p *specs.Process) error {
	if p.ApparmorProfile != "" {
		err := writeAttr("/proc/self/attr/apparmor/exec", "exec "+p.ApparmorProfile)
		if errors.Is(err, os.ErrNotExist) {
			// Kernels before 5.1 have only the shared file.
			err = writeAttr("/proc/self/attr/exec", "exec "+p.ApparmorProfile)
		}
		if err != nil {
			return fmt.Errorf("process.apparmorProfile %q: %w", p.ApparmorProfile, err)
		}
	}
	if p.SelinuxLabel != "" {
		if err := writeAttr("/proc/self/attr/exec", p.SelinuxLabel); err != nil {
			return fmt.Errorf("process.selinuxLabel %q: %w", p.SelinuxLabel, err)
		}
	}
	return nil
}

// writeAttr writes one LSM attribute of this thread's process.
func writeAttr(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(value)
	return err
}

// AppArmorEnabled reports whether the host enforces AppArmor (read on
// the host: the sandbox has no /sys).
func AppArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

// SELinuxEnabled reports whether the host has SELinux (selinuxfs
// mounted).
func SELinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

// StripUnenforcedLSM clears, in spec, the AppArmor profile and SELinux
// labels the host cannot enforce (it runs no such LSM), as runc ignores
// them there, and returns what it cleared, for the debug log.
func StripUnenforcedLSM(spec *specs.Spec, apparmor, selinux bool) []string {
	var cleared []string
	if p := spec.Process; p != nil {
		if p.ApparmorProfile != "" && !apparmor {
			cleared = append(cleared, "process.apparmorProfile")
			p.ApparmorProfile = ""
		}
		if p.SelinuxLabel != "" && !selinux {
			cleared = append(cleared, "process.selinuxLabel")
			p.SelinuxLabel = ""
		}
	}
	if l := spec.Linux; l != nil && l.MountLabel != "" && !selinux {
		cleared = append(cleared, "linux.mountLabel")
		l.MountLabel = ""
	}
	return cleared
}
