package container

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// raiseHardLimits raises, on the forked init pid, the hard limits that
// rlimits set above what it inherited, leaving the soft ones: raising a
// hard limit takes CAP_SYS_RESOURCE in the initial user namespace, which
// this process (host root) has and the init, in the pod's, has not, as
// runc's parent does it for its init. The init sets the exact limits
// itself right before its exec (lowering takes no privilege).
func raiseHardLimits(pid int, rlimits []specs.POSIXRlimit) error {
	for _, rl := range rlimits {
		res, ok := specutils.RlimitNumber(rl.Type)
		if !ok {
			return fmt.Errorf("process.rlimits: unknown type %q", rl.Type)
		}
		var cur unix.Rlimit
		if err := unix.Prlimit(pid, res, nil, &cur); err != nil {
			return fmt.Errorf("process.rlimits %s: %w", rl.Type, err)
		}
		if rl.Hard <= cur.Max {
			continue
		}
		raised := unix.Rlimit{Cur: cur.Cur, Max: rl.Hard}
		if err := unix.Prlimit(pid, res, &raised, nil); err != nil {
			return fmt.Errorf("process.rlimits %s: raising the hard limit to %d: %w", rl.Type, rl.Hard, err)
		}
	}
	return nil
}
