package fuse9p

import (
	"context"
	"encoding/binary"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hugelgupf/p9/p9"
)

// Extended attributes go to the gofer as 9P2000.L xattr messages. The
// kernel has checked the caller's right to each namespace before it asks;
// the one translation made here is a file capability's root uid
// (security.capability), which, like a file owner, means the same inside
// the pod and on the host (see IDMap).

var (
	_ fs.NodeGetxattrer    = (*node)(nil)
	_ fs.NodeSetxattrer    = (*node)(nil)
	_ fs.NodeListxattrer   = (*node)(nil)
	_ fs.NodeRemovexattrer = (*node)(nil)
)

// Getxattr implements fs.NodeGetxattrer.
//
// The kernel asks for security.capability before every write (to remove
// it), so on a tree exclusive to the mount (keepCache) its absence is
// remembered until the attribute is set through the mount.
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	isCaps := attr == capabilityXattr
	if isCaps && n.keepCache && n.noCaps.Load() {
		return 0, syscall.ENODATA
	}
	if n.lower && isOverlayXattr(attr) {
		return 0, syscall.ENODATA
	}
	f, errno := n.fid()
	if errno != 0 {
		return 0, errno
	}
	v, err := f.GetXattr(attr)
	if err != nil {
		errno := toErrno(err)
		if isCaps && errno == syscall.ENODATA {
			n.noCaps.Store(true)
		}
		return 0, errno
	}
	switch attr {
	case capabilityXattr:
		v = n.ids.capsOut(v)
	case aclAccessXattr, aclDefaultXattr:
		v = n.ids.aclIDs(v, outward)
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

// Setxattr implements fs.NodeSetxattrer.
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	f, errno := n.fid()
	if errno != 0 {
		return errno
	}
	switch attr {
	case capabilityXattr:
		var ok bool
		if data, ok = n.ids.capsIn(data); !ok {
			return syscall.EINVAL
		}
		n.noCaps.Store(false)
	case aclAccessXattr, aclDefaultXattr:
		data = n.ids.aclIDs(data, inward)
	}
	return toErrno(f.SetXattr(attr, data, p9.XattrFlags(flags)))
}

// Listxattr implements fs.NodeListxattrer.
func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	f, errno := n.fid()
	if errno != 0 {
		return 0, errno
	}
	names, err := f.ListXattrs()
	if err != nil {
		return 0, toErrno(err)
	}
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(0)
	}
	if len(dest) < b.Len() {
		return uint32(b.Len()), syscall.ERANGE
	}
	return uint32(copy(dest, b.String())), 0
}

// Removexattr implements fs.NodeRemovexattrer.
func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	f, errno := n.fid()
	if errno != 0 {
		return errno
	}
	return toErrno(f.RemoveXattr(attr))
}

// capabilityXattr holds a file's capabilities; the ACL attributes its
// POSIX ACLs.
const (
	capabilityXattr = "security.capability"
	aclAccessXattr  = "system.posix_acl_access"
	aclDefaultXattr = "system.posix_acl_default"
)

// POSIX ACL attribute format (posix_acl_xattr_header and entries): a
// little-endian version, then entries of tag (16 bits), permissions (16
// bits) and id (32 bits); the named user and group entries carry ids.
const (
	aclHeaderSize = 4
	aclEntrySize  = 8
	aclUser       = 0x02
	aclGroup      = 0x08
)

// aclIDs returns the ACL attribute v with the ids of its named user and
// group entries mapped by conv (outward: as the kernel is given them;
// inward: as the gofer stores them), like file owners. A value it does
// not understand is returned as it is, for the host to judge.
func (m *IDMap) aclIDs(v []byte, conv func([]IDRange, uint32) uint32) []byte {
	if m == nil || len(v) < aclHeaderSize || (len(v)-aclHeaderSize)%aclEntrySize != 0 {
		return v
	}
	out := append([]byte{}, v...)
	for off := aclHeaderSize; off < len(out); off += aclEntrySize {
		var rs []IDRange
		switch binary.LittleEndian.Uint16(out[off:]) {
		case aclUser:
			rs = m.UIDs
		case aclGroup:
			rs = m.GIDs
		default:
			continue
		}
		binary.LittleEndian.PutUint32(out[off+4:], conv(rs, binary.LittleEndian.Uint32(out[off+4:])))
	}
	return out
}

// File capability formats (struct vfs_ns_cap_data): a little-endian
// magic (revision | flags), two permitted/inheritable pairs, and, from
// revision 3, the uid of the user namespace root they belong to.
const (
	capRevisionMask = 0xFF000000
	capRevision2    = 0x02000000
	capRevision3    = 0x03000000
	capV2Size       = 20
	capV3Size       = 24
)

// capsOut converts a file capability the gofer read from the host to
// what the kernel is given: one without a root uid (revision 2, for any
// namespace's root, as the host sees it) belongs to the root the host
// means, the pod's root, so it becomes revision 3 with the pod root's
// uid; a revision 3 root uid is mapped like an owner.
func (m *IDMap) capsOut(v []byte) []byte {
	if m == nil || len(v) < 4 {
		return v
	}
	magic := binary.LittleEndian.Uint32(v)
	var root uint32
	switch {
	case magic&capRevisionMask == capRevision2 && len(v) == capV2Size:
	case magic&capRevisionMask == capRevision3 && len(v) == capV3Size:
		root = binary.LittleEndian.Uint32(v[capV2Size:])
	default:
		return v
	}
	out := make([]byte, capV3Size)
	copy(out, v[:capV2Size])
	binary.LittleEndian.PutUint32(out, magic&^capRevisionMask|capRevision3)
	binary.LittleEndian.PutUint32(out[capV2Size:], outward(m.UIDs, root))
	return out
}

// capsIn converts a file capability the kernel sets (revision 3 with the
// root uid of the setter's namespace, as the kernel converts it) to what
// the gofer writes: revision 2 for the pod's root, which the host reads
// as root's, otherwise revision 3 with the root uid mapped like an
// owner. A root outside the mapping is refused (false).
func (m *IDMap) capsIn(v []byte) ([]byte, bool) {
	if m == nil || len(v) != capV3Size || binary.LittleEndian.Uint32(v)&capRevisionMask != capRevision3 {
		return v, true
	}
	root, ok := inwardOK(m.UIDs, binary.LittleEndian.Uint32(v[capV2Size:]))
	if !ok {
		return nil, false
	}
	magic := binary.LittleEndian.Uint32(v)
	if root == 0 {
		out := make([]byte, capV2Size)
		copy(out, v[:capV2Size])
		binary.LittleEndian.PutUint32(out, magic&^capRevisionMask|capRevision2)
		return out, true
	}
	out := append([]byte{}, v...)
	binary.LittleEndian.PutUint32(out[capV2Size:], root)
	return out, true
}

// isOverlayXattr reports whether name is one of overlayfs's own xattrs.
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "user.overlay.") || strings.HasPrefix(name, "trusted.overlay.")
}
