#!/bin/sh
# deps.sh installs what building and testing runsc needs on Debian 12.
# It is idempotent and quick when everything is present.
set -eu
export PATH=/usr/local/go/bin:$PATH

if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go is not installed (expected at /usr/local/go, see BUILD.md)" >&2
	exit 1
fi

# Debian packages used by the tests: busybox-static makes the test
# bundles' root file systems (scripts/mkrootfs.sh); podman (with conmon)
# drives runsc end to end in tests/podman, and catatonit (a podman
# Recommends, not installed with --no-install-recommends) is what its pod
# infra containers run; containerd (with ctr and its runc v2 shim) drives
# runsc as its runc binary and through runsc's shim in tests/containerd,
# and through CRI in tests/cri, whose pods get their network from
# containernetworking-plugins (bridge, host-local, loopback in
# /usr/lib/cni) and whose runc handler runs the runc containerd depends
# on; critest pulls its images from a local registry (docker-registry)
# that skopeo fills.
PKGS="busybox-static podman catatonit containerd containernetworking-plugins docker-registry skopeo"
# `deps.sh bench` adds what make bench compares against.
if [ "${1:-}" = bench ]; then
	PKGS="$PKGS runc"
fi
missing=""
for p in $PKGS; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: need root to install:$missing" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi

go mod download
