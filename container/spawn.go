package container

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/cleanup"
	"github.com/runsc/runsc/donation"
	"github.com/runsc/runsc/nsfork"
	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// joinedNamespaces are the namespaces a container's processes share
// with their sandbox (the pod's), entered through the sandbox's pidfd
// (the pid namespace is entered for the children: see forkInit); at
// exec, the container's init's, its cgroup namespace included (at
// create, the sandbox's is the runtime's, which the init keeps unless
// the spec names one: see initOpts.cgroupNS).
const joinedNamespaces = unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// initOpts say how to fork a `runsc init`.
type initOpts struct {
	// exe is the runsc binary; exeCopy, if not nil, a sealed copy of it
	// under way (see sealedExe).
	exe     string
	exeCopy *exeCopy
	cid     string
	// spec holds the process to run (and, at create, the mounts).
	spec *specs.Spec
	// stdio is the process's stdin, stdout and stderr.
	stdio []*os.File
	// console, if not nil, is a connected console socket that receives
	// the pty master of the process's terminal.
	console *os.File
	// join is a pidfd of the process whose pid, ipc, uts and network
	// namespaces the init gets, and whose mount namespace it enters
	// itself: the sandbox at create, the container's init at exec.
	join *os.File
	// sandbox is a pidfd of the sandbox: the init is forked in its mount
	// namespace (an empty tmpfs root and the pod's /proc), so that it
	// never runs in the host's where a container could see it.
	sandbox *os.File
	// newPIDNS gives the init a pid namespace of its own, nested in
	// join's (create); pidPeer, if not nil, is a pidfd of a container
	// init whose pid namespace it gets instead (a pod's shared pid
	// namespace).
	newPIDNS bool
	pidPeer  *os.File
	// exec is set for a process exec'd into a running container.
	exec bool
	// namesSet says the hostname and domainname are set already (see
	// setJoinedUTSNames): the init leaves them.
	namesSet bool
	// cgroupNS, if not nil, is the cgroup namespace the spec names by
	// path, which the init is forked in. (A new one, the spec's cgroup
	// namespace without a path, the init makes itself once it is in
	// the container's cgroup.)
	cgroupNS *os.File
	// hostBinds (create) are the detached mount trees of the spec's
	// host binds, in spec order (see openHostBinds).
	hostBinds []*os.File
	// mkdir (create) are the runtime config's directories, which the
	// init makes in the container's root.
	mkdir []string
}

// initProc is a `runsc init` this process forked: its child.
type initProc struct {
	proc *os.Process
	// pidfd names it for signals and for the sandbox's watch.
	pidfd *os.File
	// ready reports its setup: one zero byte, or an error message.
	ready *os.File
	// execStatus reports the exec: EOF once done, or an error message.
	execStatus *os.File
	// rootReady (create only) lets it set the container up once the
	// sandbox has mounted the root: a byte, or EOF to exit.
	rootReady *os.File
	// start lets it exec the process: a byte, or EOF to exit. At
	// create it is handed to the sandbox, which keeps it until start;
	// at exec it is written once the process is in its cgroup.
	start *os.File
}

// exeFile returns the sealed copy of runsc to start the init from.
func (o *initOpts) exeFile() (*os.File, error) {
	if o.exeCopy != nil {
		return o.exeCopy.file()
	}
	f, err := sealedExe(o.exe)
	if err != nil {
		return nil, err
	}
	if err := execOnly(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// pid returns the init's host pid.
func (p *initProc) pid() int { return p.proc.Pid }

// close closes this side's pipes.
func (p *initProc) close() {
	for _, f := range []*os.File{p.pidfd, p.ready, p.execStatus, p.start, p.rootReady} {
		if f != nil {
			f.Close()
		}
	}
}

// abandon kills the init, reaps it and closes everything.
func (p *initProc) abandon() {
	unix.PidfdSendSignal(int(p.pidfd.Fd()), unix.SIGKILL, nil, 0)
	p.close()
	p.proc.Wait()
}

// forkInit forks `runsc init` into the namespaces o names, as a child of
// this process: when this command exits, the init (and the process it
// becomes) is reparented to the caller's subreaper, which reaps it, as
// with runc.
//
// The fork runs on a goroutine of its own, locked to its thread: the
// namespaces are joined on that thread only, whose children inherit
// them (for the pid namespace, only children get it); the thread is
// discarded with the goroutine, so no other goroutine ever runs in those
// namespaces.
func forkInit(o initOpts) (*initProc, error) {
	p, err := startInit(o)
	if err != nil {
		return nil, err
	}
	// Written here, by its parent: the init, execute-only and started
	// in the pod's user namespace, may not open its own /proc files
	// for writing (see execOnly). The process it execs inherits it.
	if adj := o.spec.Process.OOMScoreAdj; adj != nil {
		path := fmt.Sprintf("/proc/%d/oom_score_adj", p.pid())
		if err := os.WriteFile(path, []byte(strconv.Itoa(*adj)), 0); err != nil {
			p.abandon()
			return nil, fmt.Errorf("process.oomScoreAdj %d: %w", *adj, err)
		}
	}
	// Before the init sets its limits: it waits for start.
	if err := raiseHardLimits(p.pid(), o.spec.Process.Rlimits); err != nil {
		p.abandon()
		return nil, err
	}
	return p, nil
}

// startInit forks the init (see forkInit).
func startInit(o initOpts) (*initProc, error) {
	var cu cleanup.Cleanup
	defer cu.Clean()
	specJSON, err := json.Marshal(initSpec(o.cid, o.spec, o.namesSet))
	if err != nil {
		return nil, fmt.Errorf("encoding spec: %w", err)
	}
	memfd, err := unix.MemfdCreate("runsc-spec", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd for spec: %w", err)
	}
	specFile := os.NewFile(uintptr(memfd), "spec")
	defer specFile.Close()
	if _, err := specFile.Write(specJSON); err != nil {
		return nil, fmt.Errorf("writing spec: %w", err)
	}
	if _, err := specFile.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var p initProc
	cu.Add(p.close)
	var d donation.Agency
	d.Donate("spec-fd", specFile)
	d.Donate("ns-fd", o.join)
	// The child's ends are closed here once it is started.
	theirs, err := p.makePipes(&d, !o.exec)
	defer func() { closeAll(theirs) }()
	if err != nil {
		return nil, err
	}
	d.DonateOptional("console-fd", o.console)
	if len(o.hostBinds) > 0 {
		d.Donate(boot.HostBindsFlag, o.hostBinds...)
	}
	stdio := o.stdio
	if len(stdio) != 3 {
		devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		defer devNull.Close()
		stdio = []*os.File{devNull, devNull, devNull}
	}
	exe, err := o.exeFile()
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	files, fdArgs := d.Transfer(append([]*os.File{}, stdio...))
	// Started by descriptor (see sealedExe); the init has no global
	// flags: the log files they may name are host paths, and it reports
	// its errors to this process.
	args := append([]string{"runsc", "init", "--cid=" + o.cid}, fdArgs...)
	podNS, err := otherUserNS(o.sandbox)
	if err != nil {
		return nil, fmt.Errorf("starting container init: %w", err)
	}
	if o.exec {
		args = append(args, "--exec")
	}
	if len(o.mkdir) > 0 {
		dirs, err := json.Marshal(o.mkdir)
		if err != nil {
			return nil, err
		}
		args = append(args, "--"+boot.MkdirFlag+"="+string(dirs))
	}
	// The init leads a session of its own, as runc's does: the caller's
	// terminal signals do not reach it, and with a terminal it takes
	// its pty as controlling terminal.
	sys := &syscall.SysProcAttr{Setsid: true}
	var relay *os.File
	if o.newPIDNS {
		// A relay makes the pid namespace and starts the init in it
		// as this process's child (see boot.RelayNewPIDNS).
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("relay socket pair: %w", err)
		}
		relay = os.NewFile(uintptr(fds[0]), "relay")
		defer relay.Close()
		theirs = append(theirs, os.NewFile(uintptr(fds[1]), "relay-peer"))
		var rd donation.Agency
		rd.Donate(boot.RelayFlag, theirs[len(theirs)-1])
		var relayArgs []string
		files, relayArgs = rd.Transfer(files)
		args = append(args, relayArgs...)
	}
	var started *os.Process
	err = onDiscardedThread(func() error {
		if err := unix.Setns(int(o.join.Fd()), joinedNamespaces); err != nil {
			return fmt.Errorf("joining the sandbox's namespaces: %w", err)
		}
		if o.pidPeer != nil {
			if err := unix.Setns(int(o.pidPeer.Fd()), unix.CLONE_NEWPID); err != nil {
				return fmt.Errorf("joining the shared pid namespace: %w", err)
			}
		}
		if o.cgroupNS != nil {
			if err := unix.Setns(int(o.cgroupNS.Fd()), unix.CLONE_NEWCGROUP); err != nil {
				return fmt.Errorf("config.json: linux.namespaces cgroup path: joining: %w", err)
			}
		}
		// The mount namespace is the thread's own only once it shares
		// no root and working directory with the others.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare fs: %w", err)
		}
		if err := unix.Setns(int(o.sandbox.Fd()), unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("entering the sandbox's mount namespace: %w", err)
		}
		if podNS {
			// Into the pod's user namespace, as its root, before
			// it execs: from there on it has no capability outside
			// the pod.
			pid, err := nsfork.Start(exe, args, []string{}, nsfork.Attr{UserNS: o.sandbox, Files: files, Setsid: true})
			if err != nil {
				return err
			}
			started, err = os.FindProcess(pid)
			return err
		}
		exePath := "/proc/self/fd/" + strconv.Itoa(len(files))
		started, err = os.StartProcess(exePath, args, &os.ProcAttr{Dir: "/", Env: []string{}, Files: append(files, exe), Sys: sys})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("starting container init: %w", err)
	}
	if relay != nil {
		closeAll(theirs)
		theirs = nil
		pidfd, err := receivePidfd(relay)
		started.Wait()
		if err != nil {
			return nil, fmt.Errorf("starting container init: %w", err)
		}
		p.pidfd = pidfd
		if p.proc, err = pidfdProcess(pidfd); err != nil {
			unix.PidfdSendSignal(int(pidfd.Fd()), unix.SIGKILL, nil, 0)
			return nil, fmt.Errorf("starting container init: %w", err)
		}
		cu.Release()
		return &p, nil
	}
	p.proc = started
	// Not reaped yet, so the pid cannot have been reused.
	pidfd, err := unix.PidfdOpen(p.proc.Pid, 0)
	if err != nil {
		unix.Kill(p.proc.Pid, unix.SIGKILL)
		p.proc.Wait()
		return nil, fmt.Errorf("pidfd of container init: %w", err)
	}
	p.pidfd = os.NewFile(uintptr(pidfd), "init-pidfd")
	cu.Release()
	return &p, nil
}

// onDiscardedThread runs fn on a goroutine locked to an OS thread of its
// own that is never unlocked: fn may move the thread into other
// namespaces, and the thread then exits with the goroutine, so no other
// goroutine ever runs there. It returns fn's error.
func onDiscardedThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked
		done <- fn()
	}()
	return <-done
}

// otherUserNS reports whether the process pidfd names (the sandbox) is
// in a user namespace other than this process's: the pod's.
func otherUserNS(pidfd *os.File) (bool, error) {
	f, err := podUserNSFile(pidfd)
	if f != nil {
		f.Close()
	}
	return f != nil, err
}

// podUserNSFile opens the user namespace of the process pidfd names (the
// sandbox): nil if it is this process's own.
func podUserNSFile(pidfd *os.File) (*os.File, error) {
	pid, err := procfs.PidfdPid(int(pidfd.Fd()))
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("the sandbox is gone")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, fmt.Errorf("the sandbox's user namespace: %w", err)
	}
	// The pid named the sandbox only if it still does now.
	if again, err := procfs.PidfdPid(int(pidfd.Fd())); err != nil || again != pid {
		f.Close()
		return nil, fmt.Errorf("the sandbox is gone")
	}
	var theirs, ours unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &theirs); err != nil {
		f.Close()
		return nil, err
	}
	if err := unix.Stat("/proc/self/ns/user", &ours); err != nil {
		f.Close()
		return nil, err
	}
	if theirs.Ino == ours.Ino && theirs.Dev == ours.Dev {
		f.Close()
		return nil, nil
	}
	return f, nil
}

// initSpec returns the spec the init works from: spec without the
// AppArmor profile and SELinux labels this host cannot enforce (runc
// ignores them there too; the init applies the others).
func initSpec(cid string, spec *specs.Spec, namesSet bool) *specs.Spec {
	out := *spec
	if namesSet {
		out.Hostname, out.Domainname = "", ""
	}
	if spec.Process != nil {
		p := *spec.Process
		out.Process = &p
	}
	if spec.Linux != nil {
		l := *spec.Linux
		out.Linux = &l
	}
	if cleared := boot.StripUnenforcedLSM(&out, boot.AppArmorEnabled(), boot.SELinuxEnabled()); len(cleared) > 0 {
		slog.Debug("ignored: the host does not enforce them", "cid", cid, "fields", cleared)
	}
	return &out
}

// receivePidfd reads the relay's report: a pidfd of the init it
// started, or why it could not.
func receivePidfd(relay *os.File) (*os.File, error) {
	buf, oob := make([]byte, 512), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(relay.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("reading the relay: %w", err)
	}
	if oobn > 0 {
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
			if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
				return os.NewFile(uintptr(fds[0]), "init-pidfd"), nil
			}
		}
		return nil, fmt.Errorf("the relay sent no pidfd")
	}
	if n == 0 {
		return nil, fmt.Errorf("the relay exited without starting the init")
	}
	return nil, fmt.Errorf("%s", buf[:n])
}

// pidfdProcess returns the process pidfd names, which must be a child
// of this process.
func pidfdProcess(pidfd *os.File) (*os.Process, error) {
	pid, err := procfs.PidfdPid(int(pidfd.Fd()))
	if err != nil {
		return nil, err
	}
	if pid <= 0 {
		return nil, fmt.Errorf("the init exited at once")
	}
	if st, err := procfs.ReadStat("/proc", pid); err != nil || st.PPID != os.Getpid() {
		return nil, fmt.Errorf("the init (pid %d) is not a child of runsc", pid)
	}
	return os.FindProcess(pid)
}

// initPipe is one of the init's pipes: the flag naming the child's end,
// where this side's end is kept, and whether this side reads.
type initPipe struct {
	flag     string
	ours     **os.File
	readHere bool
}

// makePipes makes the init's pipes (with create, the root pipe too), keeps this side's ends in p and
// donates the child's ends to d. It returns the child's ends, for the
// caller to close once the child has them.
func (p *initProc) makePipes(d *donation.Agency, create bool) ([]*os.File, error) {
	pipes := []initPipe{{"ready-fd", &p.ready, true}, {"exec-status-fd", &p.execStatus, true}, {"start-fd", &p.start, false}}
	if create {
		pipes = append(pipes, initPipe{"root-fd", &p.rootReady, false})
	}
	var theirs []*os.File
	for _, pp := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			return theirs, fmt.Errorf("init pipe: %w", err)
		}
		ours, end := w, r
		if pp.readHere {
			ours, end = r, w
		}
		*pp.ours = ours
		theirs = append(theirs, end)
		d.Donate(pp.flag, end)
	}
	return theirs, nil
}

// waitReady waits for the init's setup report. On failure the init is
// killed and reaped, and its message returned.
func (p *initProc) waitReady() error {
	msg, _ := io.ReadAll(p.ready)
	p.ready.Close()
	p.ready = nil
	if len(msg) == 1 && msg[0] == 0 {
		return nil
	}
	return p.failed(msg)
}

// waitMounted waits until the init reports its mounts made (see
// boot.MountsReady), or returns why it could not make them.
func (p *initProc) waitMounted() error {
	var b [1]byte
	n, _ := p.ready.Read(b[:])
	if n == 1 && b[0] == boot.MountsReady {
		return nil
	}
	rest, _ := io.ReadAll(p.ready)
	p.ready.Close()
	p.ready = nil
	return p.failed(append(b[:n], rest...))
}

// failed kills and reaps an init that reported msg instead of being
// ready, and returns the error: msg, or its exit status if it said
// nothing.
func (p *initProc) failed(msg []byte) error {
	unix.PidfdSendSignal(int(p.pidfd.Fd()), unix.SIGKILL, nil, 0)
	st, _ := p.proc.Wait()
	if len(msg) == 0 {
		code := -1
		if st != nil {
			code = boot.ExitCode(st.Sys().(syscall.WaitStatus))
		}
		return fmt.Errorf("container init exited with status %d before it was ready", code)
	}
	return fmt.Errorf("container init: %s", msg)
}

// waitExec waits until the process has exec'd, or returns why it could
// not (the init then exits).
func (p *initProc) waitExec() error {
	err := boot.WaitExec(p.execStatus)
	p.execStatus = nil
	return err
}
