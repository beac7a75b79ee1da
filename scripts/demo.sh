#!/bin/sh
# demo.sh: runs a real command in a sandbox with `runsc do`: the host's
# root, served read-only by a gofer over 9P, under a memory overlay.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "demo: runsc needs root (namespaces, mounts)" >&2
	exit 1
fi
echo "+ runsc do -- sh -c '...'"
exec bin/runsc do -- /bin/sh -c '
echo "hostname:    $(hostname)"
echo "pid:         $$ (pid 1 of the container: $(cat /proc/1/comm))"
echo "processes:   $(ls /proc | grep -c "^[0-9]")"
echo "kernel:      $(uname -sr)"
echo "root mount:  $(grep " / / " /proc/self/mountinfo | cut -d" " -f9)"
echo "network:     $(ls /sys/class/net | tr "\n" " ")"
echo "write:       $(echo sandboxed > /etc/runsc-demo && cat /etc/runsc-demo) (in the overlay only)"
echo "os-release:  $(. /etc/os-release && echo "$PRETTY_NAME")"
'
