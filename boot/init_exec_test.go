package boot

import (
	"strings"
	"testing"

	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

func TestCapSet(t *testing.T) {
	all := specutils.Capabilities()
	var allBits uint64
	for i := range all {
		allBits |= 1 << uint(i)
	}
	for _, c := range []struct {
		name    string
		in      []string
		want    uint64
		mknod   bool
		badName string
	}{
		{name: "none", in: nil, want: 0},
		{name: "one", in: []string{"CAP_KILL"}, want: 1 << unix.CAP_KILL},
		{name: "several, repeated", in: []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"}, want: 1<<unix.CAP_CHOWN | 1<<unix.CAP_NET_BIND_SERVICE},
		{name: "highest", in: []string{"CAP_CHECKPOINT_RESTORE"}, want: 1 << unix.CAP_CHECKPOINT_RESTORE},
		{name: "mknod alone is removed", in: []string{"CAP_MKNOD"}, want: 0},
		{name: "mknod among others is removed", in: []string{"CAP_SYS_ADMIN", "CAP_MKNOD", "CAP_SETUID"}, want: 1<<unix.CAP_SYS_ADMIN | 1<<unix.CAP_SETUID},
		{name: "every capability but mknod", in: all, want: allBits &^ (1 << unix.CAP_MKNOD)},
		{name: "mknod kept in a user namespace", in: []string{"CAP_MKNOD", "CAP_SETUID"}, mknod: true, want: 1<<unix.CAP_MKNOD | 1<<unix.CAP_SETUID},
		{name: "every capability in a user namespace", in: all, mknod: true, want: allBits},
		{name: "unknown", in: []string{"CAP_KILL", "CAP_FLY"}, badName: "CAP_FLY"},
		{name: "lower case", in: []string{"cap_kill"}, badName: "cap_kill"},
		{name: "without prefix", in: []string{"KILL"}, badName: "KILL"},
		{name: "empty name", in: []string{""}, badName: `""`},
		{name: "unknown after mknod", in: []string{"CAP_MKNOD", "CAP_NOPE"}, badName: "CAP_NOPE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := capSet(c.in, c.mknod)
			if c.badName != "" {
				if err == nil {
					t.Fatalf("capSet(%q) = %#x, want an error", c.in, got)
				}
				if !strings.Contains(err.Error(), c.badName) {
					t.Fatalf("error %q does not name %s", err, c.badName)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("capSet(%q) = %#x, %v; want %#x", c.in, got, err, c.want)
			}
			if !c.mknod && got&(1<<unix.CAP_MKNOD) != 0 {
				t.Fatalf("capSet(%q) grants CAP_MKNOD", c.in)
			}
		})
	}
}
