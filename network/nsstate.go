package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// onThreadIn runs fn on a thread of its own in network namespace ns. The
// thread is never unlocked: it ends with fn's goroutine, so no other
// goroutine runs in that namespace. (Were the goroutine on the main
// thread, Go would park that thread for good instead; runsc keeps its
// main goroutine locked to it.)
func onThreadIn(ns *os.File, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("entering network namespace: %w", err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// firewallState describes the first firewall table of the calling
// thread's network namespace ("" if it has none): an nftables table, or
// an iptables, ip6tables or arptables table of the legacy kernel tables.
func firewallState() (string, error) {
	for _, f := range []string{"ip_tables_names", "ip6_tables_names", "arp_tables_names"} {
		data, err := os.ReadFile("/proc/thread-self/net/" + f)
		if err == nil && strings.TrimSpace(string(data)) != "" {
			return fmt.Sprintf("legacy %s table %s", strings.TrimSuffix(f, "_names"), strings.Fields(string(data))[0]), nil
		}
	}
	n, err := nftablesTables()
	if err != nil {
		return "", err
	}
	if n > 0 {
		return fmt.Sprintf("%d nftables table(s)", n), nil
	}
	return "", nil
}

// nftablesTables counts the nftables tables of the calling thread's
// network namespace, with a NFT_MSG_GETTABLE dump (0 when the kernel
// has no nftables).
func nftablesTables() (int, error) {
	if !nftablesLoaded() {
		// Asking would make the kernel load it.
		return 0, nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if errors.Is(err, unix.EPROTONOSUPPORT) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("netfilter netlink socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, err
	}
	// nlmsghdr, then nfgenmsg (family AF_UNSPEC, version 0, res_id 0).
	req := make([]byte, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETTABLE)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], 1)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("listing nftables tables: %w", err)
	}
	tables := 0
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("listing nftables tables: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return 0, fmt.Errorf("listing nftables tables: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return tables, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return 0, errors.New("listing nftables tables: short error message")
				}
				errno := unix.Errno(-int32(binary.NativeEndian.Uint32(m.Data)))
				if errno == 0 {
					return tables, nil
				}
				if errno == unix.ENOENT || errno == unix.EPROTONOSUPPORT || errno == unix.EOPNOTSUPP || errno == unix.EINVAL {
					// No nftables in this kernel.
					return 0, nil
				}
				return 0, fmt.Errorf("listing nftables tables: %w", errno)
			default:
				tables++
			}
		}
	}
}

// nftablesLoaded reports whether the kernel has nf_tables: loaded as a
// module, or built in.
func nftablesLoaded() bool {
	if _, err := os.Stat("/sys/module/nf_tables"); err == nil {
		return true
	}
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return true
	}
	builtin, err := os.ReadFile("/lib/modules/" + unix.ByteSliceToString(u.Release[:]) + "/modules.builtin")
	return err != nil || strings.Contains(string(builtin), "/nf_tables.ko")
}

// sysctlDir is where the calling thread's network namespace's sysctls
// are.
const sysctlDir = "/proc/sys/net"

// readSysctls returns the readable and writable network sysctls of the
// calling thread's namespace, by path under sysctlDir.
func readSysctls() (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(sysctlDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm()&0o600 != 0o600 {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			// Some read as errors until set (stable_secret).
			return nil
		}
		out[strings.TrimPrefix(path, sysctlDir+"/")] = strings.TrimSpace(string(data))
		return nil
	})
	return out, err
}

// splitSysctls splits sysctls (see readSysctls) into the namespace's
// own, with the defaults and "all" of ipv4/ipv6 conf and neigh, and the
// devices' (conf/DEV/..., neigh/DEV/...), which a link loses when it
// moves to another namespace.
func splitSysctls(all map[string]string) (ns, devices map[string]string) {
	ns, devices = map[string]string{}, map[string]string{}
	for p, v := range all {
		f := strings.Split(p, "/")
		if len(f) >= 4 && (f[1] == "conf" || f[1] == "neigh") && f[2] != "all" && f[2] != "default" {
			devices[p] = v
		} else {
			ns[p] = v
		}
	}
	return ns, devices
}

// copySysctls sets, in the calling thread's namespace, each of want (see
// readSysctls) whose value there differs; "all" and "default" first. The
// kernel checks some against others (a port range against the
// unprivileged port start, a high threshold against the low one), so
// writes it refuses as invalid are tried again once others are in, until
// none gets in. A sysctl the namespace does not have is left out.
func copySysctls(want map[string]string) error {
	var pending []string
	for p := range want {
		pending = append(pending, p)
	}
	first := func(p string) bool { return strings.Contains(p, "/all/") || strings.Contains(p, "/default/") }
	sort.Slice(pending, func(i, j int) bool {
		if fi, fj := first(pending[i]), first(pending[j]); fi != fj {
			return fi
		}
		return pending[i] < pending[j]
	})
	for len(pending) > 0 {
		var left []string
		var lastErr error
		for _, p := range pending {
			full := filepath.Join(sysctlDir, p)
			data, err := os.ReadFile(full)
			if err != nil {
				slog.Debug("sysctl not copied: the namespace has none", "sysctl", p, "err", err)
				continue
			}
			if strings.TrimSpace(string(data)) == want[p] {
				continue
			}
			err = os.WriteFile(full, []byte(want[p]+"\n"), 0)
			switch {
			case err == nil:
			case errors.Is(err, unix.EINVAL):
				left = append(left, p)
				lastErr = fmt.Errorf("setting net.%s to %q: %w", strings.ReplaceAll(p, "/", "."), want[p], err)
			default:
				return fmt.Errorf("setting net.%s to %q: %w", strings.ReplaceAll(p, "/", "."), want[p], err)
			}
		}
		if len(left) == len(pending) {
			return lastErr
		}
		pending = left
	}
	return nil
}
