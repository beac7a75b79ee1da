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

// SetXattr implements p9.File.SetXattr: extended attributes are not
// served (the 9P client does not support them either).
func (f *file) SetXattr(attr string, data []byte, flags p9.XattrFlags) error {
	return linux.ENOSYS
}

// GetXattr implements p9.File.GetXattr.
func (f *file) GetXattr(attr string) ([]byte, error) {
	return nil, linux.ENOSYS
}

// ListXattrs implements p9.File.ListXattrs.
func (f *file) ListXattrs() ([]string, error) {
	return nil, linux.ENOSYS
}

// RemoveXattr implements p9.File.RemoveXattr.
func (f *file) RemoveXattr(attr string) error {
	return linux.ENOSYS
}
