package fuse9p

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/p9"
)

// IDRange maps Size ids from Inside (as the pod's user namespace, and the
// gofer, name them) to Outside (as the FUSE mount's user namespace, the
// creator's, names them): one line of /proc/<pid>/uid_map.
type IDRange struct {
	Inside, Outside, Size uint32
}

// IDMap is the uid and gid mapping of the sandbox's user namespace. A
// FUSE mount made by the creator (see MakeMount) belongs to the creator's
// user namespace: the kernel sends the caller's ids and reads the file
// owners in that namespace's terms. With IDMap, the file system speaks
// the pod's ids instead, both ways: a file the gofer reports as owned by
// uid N appears as uid N inside the pod, and a file the pod's uid N
// creates is created as uid N by the gofer.
type IDMap struct {
	UIDs, GIDs []IDRange
}

// overflowID is the id given to what has no mapping (the kernel's
// overflowuid): "nobody".
const overflowID = 65534

// ReadIDMap reads the user namespace mapping of process pid ("self"):
// nil if it is the identity (the initial user namespace).
func ReadIDMap(pid string) (*IDMap, error) {
	uids, err := readIDRanges("/proc/" + pid + "/uid_map")
	if err != nil {
		return nil, err
	}
	gids, err := readIDRanges("/proc/" + pid + "/gid_map")
	if err != nil {
		return nil, err
	}
	m := &IDMap{UIDs: uids, GIDs: gids}
	if m.identity() {
		return nil, nil
	}
	return m, nil
}

// readIDRanges parses a uid_map or gid_map file.
func readIDRanges(path string) ([]IDRange, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []IDRange
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		var v [3]uint32
		for i, s := range fields {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
			}
			v[i] = uint32(n)
		}
		out = append(out, IDRange{Inside: v[0], Outside: v[1], Size: v[2]})
	}
	return out, sc.Err()
}

// identity reports whether m maps every id to itself.
func (m *IDMap) identity() bool {
	full := func(rs []IDRange) bool {
		return len(rs) == 1 && rs[0].Inside == 0 && rs[0].Outside == 0 && rs[0].Size == ^uint32(0)
	}
	return full(m.UIDs) && full(m.GIDs)
}

// outward maps an inside id to its outside id, overflowID if unmapped.
func outward(rs []IDRange, id uint32) uint32 {
	for _, r := range rs {
		if id >= r.Inside && id-r.Inside < r.Size {
			return r.Outside + (id - r.Inside)
		}
	}
	return overflowID
}

// inward maps an outside id to its inside id, overflowID if unmapped.
func inward(rs []IDRange, id uint32) uint32 {
	in, _ := inwardOK(rs, id)
	return in
}

// inwardOK maps an outside id to its inside id, and reports whether it
// is mapped (overflowID if not).
func inwardOK(rs []IDRange, id uint32) (uint32, bool) {
	for _, r := range rs {
		if id >= r.Outside && id-r.Outside < r.Size {
			return r.Inside + (id - r.Outside), true
		}
	}
	return overflowID, false
}

// owner returns the ids the kernel is given for a file the gofer reports
// as owned by uid, gid.
func (m *IDMap) owner(uid p9.UID, gid p9.GID) (uint32, uint32) {
	if m == nil {
		return uint32(uid), uint32(gid)
	}
	return outward(m.UIDs, uint32(uid)), outward(m.GIDs, uint32(gid))
}

// uid returns the gofer's uid for a uid the kernel sent.
func (m *IDMap) uid(u uint32) p9.UID {
	if m == nil {
		return p9.UID(u)
	}
	return p9.UID(inward(m.UIDs, u))
}

// gid returns the gofer's gid for a gid the kernel sent.
func (m *IDMap) gid(g uint32) p9.GID {
	if m == nil {
		return p9.GID(g)
	}
	return p9.GID(inward(m.GIDs, g))
}

// caller returns the uid and gid, as the gofer names them, of the
// process making the request, which creates a file. A caller outside
// the mapping gets EOVERFLOW, as from an idmapped mount: the file would
// have no owner.
func (m *IDMap) caller(ctx context.Context) (p9.UID, p9.GID, syscall.Errno) {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return p9.NoUID, p9.NoGID, 0
	}
	if m == nil {
		return p9.UID(c.Uid), p9.GID(c.Gid), 0
	}
	uid, uok := inwardOK(m.UIDs, c.Uid)
	gid, gok := inwardOK(m.GIDs, c.Gid)
	if !uok || !gok {
		return p9.NoUID, p9.NoGID, syscall.EOVERFLOW
	}
	return p9.UID(uid), p9.GID(gid), 0
}

// fillAttr converts 9P attributes to FUSE attributes, the owner mapped
// by m.
func (m *IDMap) fillAttr(qid p9.QID, a *p9.Attr, out *fuse.Attr) {
	out.Ino = qid.Path
	out.Mode = uint32(a.Mode)
	out.Nlink = uint32(a.NLink)
	out.Uid, out.Gid = m.owner(a.UID, a.GID)
	out.Rdev = uint32(a.RDev)
	out.Size = a.Size
	out.Blocks = a.Blocks
	out.Blksize = uint32(a.BlockSize)
	out.Atime, out.Atimensec = a.ATimeSeconds, uint32(a.ATimeNanoSeconds)
	out.Mtime, out.Mtimensec = a.MTimeSeconds, uint32(a.MTimeNanoSeconds)
	out.Ctime, out.Ctimensec = a.CTimeSeconds, uint32(a.CTimeNanoSeconds)
}
