package fuse9p

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/p9"
)

func TestIDMap(t *testing.T) {
	m := &IDMap{
		UIDs: []IDRange{{Inside: 0, Outside: 100000, Size: 65536}},
		GIDs: []IDRange{{Inside: 0, Outside: 200000, Size: 1000}, {Inside: 5000, Outside: 300000, Size: 10}},
	}
	for _, c := range []struct {
		name             string
		uid, gid         uint32
		wantUID, wantGID uint32
	}{
		{name: "root", uid: 0, gid: 0, wantUID: 100000, wantGID: 200000},
		{name: "last mapped", uid: 65535, gid: 5009, wantUID: 165535, wantGID: 300009},
		{name: "unmapped owner is nobody", uid: 65536, gid: 1000, wantUID: overflowID, wantGID: overflowID},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, g := m.owner(p9.UID(c.uid), p9.GID(c.gid))
			if u != c.wantUID || g != c.wantGID {
				t.Fatalf("owner(%d, %d) = %d, %d; want %d, %d", c.uid, c.gid, u, g, c.wantUID, c.wantGID)
			}
			if c.wantUID != overflowID && (m.uid(u) != p9.UID(c.uid) || m.gid(g) != p9.GID(c.gid)) {
				t.Fatalf("round trip of %d, %d gave %d, %d", c.uid, c.gid, m.uid(u), m.gid(g))
			}
		})
	}
	t.Run("caller outside the mapping is nobody", func(t *testing.T) {
		if got := m.uid(0); got != overflowID {
			t.Fatalf("uid(0) = %d, want %d", got, overflowID)
		}
	})
	t.Run("a creator outside the mapping gets EOVERFLOW", func(t *testing.T) {
		ctx := &fuse.Context{Caller: fuse.Caller{Owner: fuse.Owner{Uid: 100007, Gid: 200003}}}
		if u, g, errno := m.caller(ctx); errno != 0 || u != 7 || g != 3 {
			t.Fatalf("caller inside: %d %d %v", u, g, errno)
		}
		ctx.Caller.Owner.Uid = 7
		if _, _, errno := m.caller(ctx); errno != syscall.EOVERFLOW {
			t.Fatalf("caller outside: %v, want EOVERFLOW", errno)
		}
	})
	t.Run("nil map is the identity", func(t *testing.T) {
		var n *IDMap
		if u, g := n.owner(7, 8); u != 7 || g != 8 || n.uid(7) != 7 || n.gid(8) != 8 {
			t.Fatal("nil map changed ids")
		}
	})
}

func TestReadIDRanges(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, text string
		want       []IDRange
		bad        bool
	}{
		{name: "initial namespace", text: "         0          0 4294967295\n", want: []IDRange{{0, 0, ^uint32(0)}}},
		{name: "two lines", text: "0 100000 65536\n70000 5 1\n", want: []IDRange{{0, 100000, 65536}, {70000, 5, 1}}},
		{name: "short line", text: "0 100000\n", bad: true},
		{name: "not a number", text: "0 x 1\n", bad: true},
		{name: "too large", text: "0 4294967296 1\n", bad: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			os.WriteFile(p, []byte(c.text), 0o644)
			got, err := readIDRanges(p)
			if c.bad {
				if err == nil {
					t.Fatalf("no error for %q", c.text)
				}
				return
			}
			if err != nil || len(got) != len(c.want) {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			}
		})
	}
	t.Run("own process in the initial namespace is no mapping", func(t *testing.T) {
		m, err := ReadIDMap("self")
		if err != nil {
			t.Fatal(err)
		}
		uids, _ := readIDRanges("/proc/self/uid_map")
		if len(uids) != 1 || uids[0] != (IDRange{0, 0, ^uint32(0)}) {
			t.Skipf("running in a user namespace: %v", uids)
		}
		if m != nil {
			t.Fatalf("identity read as %+v", m)
		}
	})
}

func TestFileCapabilityRoot(t *testing.T) {
	m := &IDMap{UIDs: []IDRange{{Inside: 0, Outside: 100000, Size: 65536}}, GIDs: []IDRange{{Inside: 0, Outside: 100000, Size: 65536}}}
	v2 := make([]byte, capV2Size)
	binary.LittleEndian.PutUint32(v2, capRevision2|1)
	binary.LittleEndian.PutUint32(v2[4:], 1<<13)
	out := m.capsOut(v2)
	if len(out) != capV3Size || binary.LittleEndian.Uint32(out)&capRevisionMask != capRevision3 || binary.LittleEndian.Uint32(out[capV2Size:]) != 100000 ||
		binary.LittleEndian.Uint32(out)&1 != 1 || binary.LittleEndian.Uint32(out[4:]) != 1<<13 {
		t.Fatalf("host revision 2 capability to the kernel: %x", out)
	}
	back, ok := m.capsIn(out)
	if !ok || string(back) != string(v2) {
		t.Fatalf("the pod root's capability back to the host: %x, %v; want %x", back, ok, v2)
	}
	other := append([]byte{}, out...)
	binary.LittleEndian.PutUint32(other[capV2Size:], 100007)
	if got, ok := m.capsIn(other); !ok || len(got) != capV3Size || binary.LittleEndian.Uint32(got[capV2Size:]) != 7 {
		t.Fatalf("a nested root's capability: %x %v", got, ok)
	}
	binary.LittleEndian.PutUint32(other[capV2Size:], 5)
	if _, ok := m.capsIn(other); ok {
		t.Fatal("a root outside the mapping was accepted")
	}
	if got := (*IDMap)(nil).capsOut(v2); string(got) != string(v2) {
		t.Fatal("no mapping changed a capability")
	}
	if got := m.capsOut([]byte{1, 2}); string(got) != "\x01\x02" {
		t.Fatal("a malformed value was changed")
	}
}

func TestACLIDs(t *testing.T) {
	m := &IDMap{UIDs: []IDRange{{Inside: 0, Outside: 100000, Size: 65536}}, GIDs: []IDRange{{Inside: 0, Outside: 200000, Size: 65536}}}
	entry := func(tag, perm uint16, id uint32) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint16(b, tag)
		binary.LittleEndian.PutUint16(b[2:], perm)
		binary.LittleEndian.PutUint32(b[4:], id)
		return b
	}
	acl := func(user, group uint32) []byte {
		v := []byte{2, 0, 0, 0}
		for _, e := range [][]byte{entry(0x01, 6, ^uint32(0)), entry(aclUser, 4, user), entry(0x04, 0, ^uint32(0)), entry(aclGroup, 4, group), entry(0x10, 4, ^uint32(0))} {
			v = append(v, e...)
		}
		return v
	}
	host := acl(1234, 55)
	kernel := m.aclIDs(host, outward)
	if string(kernel) != string(acl(101234, 200055)) {
		t.Fatalf("to the kernel: %x", kernel)
	}
	if back := m.aclIDs(kernel, inward); string(back) != string(host) {
		t.Fatalf("back to the host: %x", back)
	}
	if got := m.aclIDs([]byte{2, 0, 0}, outward); string(got) != "\x02\x00\x00" {
		t.Fatal("a malformed value was changed")
	}
	if got := (*IDMap)(nil).aclIDs(host, outward); string(got) != string(host) {
		t.Fatal("no mapping changed an ACL")
	}
}
