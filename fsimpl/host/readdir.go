package host

import (
	"encoding/binary"
	"sync"

	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// direntOverhead is the encoded size of a 9P dirent without its name:
// qid[13] offset[8] type[1] name length[2].
const direntOverhead = 13 + 8 + 1 + 2

// direntBufSize is the getdents buffer size: a few hundred entries per
// system call, reused across calls.
const direntBufSize = 32 << 10

var direntBufs = sync.Pool{New: func() any { return new([direntBufSize]byte) }}

// dtMode maps a getdents d_type to the file type bits of a mode.
var dtMode = map[uint8]uint32{
	unix.DT_DIR:  unix.S_IFDIR,
	unix.DT_LNK:  unix.S_IFLNK,
	unix.DT_REG:  unix.S_IFREG,
	unix.DT_FIFO: unix.S_IFIFO,
	unix.DT_SOCK: unix.S_IFSOCK,
	unix.DT_CHR:  unix.S_IFCHR,
	unix.DT_BLK:  unix.S_IFBLK,
}

// Readdir implements p9.File.Readdir. offset is 0 or the Offset of the last
// entry the client received; each entry's Offset is the host file system's
// own directory cookie for the position after it, so offsets stay valid
// across calls and no entry is lost or repeated however the client pages
// through the directory. The encoded entries fit in count bytes. "." and
// ".." are not returned.
func (f *file) Readdir(offset uint64, count uint32) (_ p9.Dirents, err error) {
	defer fixErrno(&err)
	if !f.isDir {
		return nil, unix.ENOTDIR
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openFD < 0 {
		return nil, unix.EBADF
	}
	var out p9.Dirents
	err = readdir(f.openFD, offset, count, direntOverhead, func(d p9.Dirent) {
		out = append(out, d)
	})
	return out, err
}

// ReaddirAttr implements p9.ReaddirAttrer: Readdir with every entry's
// attributes, stated relative to the directory without following symbolic
// links. An entry removed before it could be stated is returned with no
// valid attributes. The directory need not be open: an unopened fid is
// read through a descriptor opened for this call alone (the offsets are
// the file system's own cookies, so paging still works), which saves the
// client an open and a clunk per listing.
func (f *file) ReaddirAttr(offset uint64, count uint32) (_ []p9.DirentAttr, err error) {
	defer fixErrno(&err)
	if !f.isDir {
		return nil, unix.ENOTDIR
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fd := f.openFD
	if fd < 0 {
		if fd, err = unix.Openat(f.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return nil, err
		}
		defer unix.Close(fd)
	}
	var out []p9.DirentAttr
	err = readdir(fd, offset, count, p9.DirentAttrOverhead, func(d p9.Dirent) {
		out = append(out, p9.DirentAttr{Dirent: d})
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		var st unix.Stat_t
		if unix.Fstatat(fd, out[i].Name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue
		}
		out[i].QID = qidOf(&st)
		out[i].Type = out[i].QID.Type
		out[i].Valid, out[i].Attr = attrOf(&st)
	}
	return out, nil
}

// readdir reads entries of the open directory fd from offset and passes
// each to emit while their encoded size, overhead plus the name, fits
// count.
func readdir(fd int, offset uint64, count uint32, overhead int, emit func(p9.Dirent)) error {
	if _, err := unix.Seek(fd, int64(offset), unix.SEEK_SET); err != nil {
		return err
	}
	buf := direntBufs.Get().(*[direntBufSize]byte)[:]
	defer direntBufs.Put((*[direntBufSize]byte)(buf))
	used := uint32(0)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil || n == 0 {
			return err
		}
		for b := buf[:n]; len(b) > 0; {
			if len(b) < 19 {
				return nil
			}
			ino := binary.NativeEndian.Uint64(b[0:])
			off := binary.NativeEndian.Uint64(b[8:])
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			typ := b[18]
			if reclen < 19 || reclen > len(b) {
				return unix.EIO
			}
			name := cString(b[19:reclen])
			b = b[reclen:]
			if name == "." || name == ".." {
				continue
			}
			size := uint32(overhead + len(name))
			if used+size > count {
				return nil
			}
			used += size
			qid := p9.QID{Type: p9.FileMode(dtMode[typ]).QIDType(), Path: ino}
			emit(p9.Dirent{QID: qid, Offset: off, Type: qid.Type, Name: name})
		}
	}
}

// cString returns b up to its first NUL byte.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
