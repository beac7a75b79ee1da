package host

import (
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
)

// Lock implements p9.File.Lock. POSIX locks are kept by the sandbox's
// kernel (FUSE), not forwarded to the host.
func (f *file) Lock(pid int, locktype p9.LockType, flags p9.LockFlags, start, length uint64, client string) (p9.LockStatus, error) {
	return p9.LockStatusError, linux.ENOSYS
}
