package tests

import (
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// adoptOrphans makes the test binary what a container client is to
// runsc: the subreaper of the processes its runsc commands leave behind
// (container processes, sandboxes, gofers), reaping them as they exit.
// Without it they go to the machine's pid 1, which may reap late, and a
// sandbox (pid 1 of its pid namespace) does not finish exiting until
// every container process of its pod has been reaped.
//
// Only processes in a pid namespace of their own (NSpid longer than 1)
// are reaped: the commands the tests start are waited for by os/exec.
func adoptOrphans() {
	if os.Geteuid() != 0 {
		return
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	go func() {
		for range sigs {
			reapAdopted()
		}
	}()
}

// reapAdopted reaps the exited children of this process that live in a
// pid namespace of their own.
func reapAdopted() {
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		data, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
		for _, f := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			st, err := procfs.ReadStat("/proc", pid)
			if err != nil || !st.Zombie() {
				continue
			}
			status, err := os.ReadFile("/proc/" + f + "/status")
			if err != nil {
				continue
			}
			if ns, err := procfs.ParseNSpid(status); err == nil && len(ns) > 1 {
				unix.Wait4(pid, nil, unix.WNOHANG, nil)
			}
		}
	}
}
