package host

import (
	"encoding/binary"

	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// direntOverhead is the encoded size of a 9P dirent without its name:
// qid[13] offset[8] type[1] name length[2].
const direntOverhead = 13 + 8 + 1 + 2

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
	if _, err := unix.Seek(f.openFD, int64(offset), unix.SEEK_SET); err != nil {
		return nil, err
	}
	bufSize := int(count)
	if bufSize < 4096 {
		bufSize = 4096
	}
	if bufSize > 1<<20 {
		bufSize = 1 << 20
	}
	buf := make([]byte, bufSize)
	var (
		out  p9.Dirents
		used uint32
	)
	for {
		n, err := unix.Getdents(f.openFD, buf)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		for b := buf[:n]; len(b) > 0; {
			if len(b) < 19 {
				return out, nil
			}
			ino := binary.NativeEndian.Uint64(b[0:])
			off := binary.NativeEndian.Uint64(b[8:])
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			typ := b[18]
			if reclen < 19 || reclen > len(b) {
				return nil, unix.EIO
			}
			name := cString(b[19:reclen])
			b = b[reclen:]
			if name == "." || name == ".." {
				continue
			}
			size := uint32(direntOverhead + len(name))
			if used+size > count {
				return out, nil
			}
			used += size
			qid := p9.QID{Type: p9.FileMode(dtMode[typ]).QIDType(), Path: ino}
			out = append(out, p9.Dirent{QID: qid, Offset: off, Type: qid.Type, Name: name})
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
