#!/bin/sh
# mkrootfs.sh DIR: makes DIR a minimal root file system from Debian's
# busybox-static: /bin/busybox, a link per applet in /bin, and the
# directories a container expects. Used by the integration tests and the
# benchmarks.
set -eu
dir=${1:?usage: mkrootfs.sh DIR}
bb=/bin/busybox
if ! "$bb" --list >/dev/null 2>&1; then
	echo "mkrootfs: $bb missing: install busybox-static (scripts/deps.sh)" >&2
	exit 1
fi
mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/root" "$dir/var" "$dir/home"
chmod 1777 "$dir/tmp"
cp "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list); do
	[ "$applet" = busybox ] && continue
	ln -sf busybox "$dir/bin/$applet"
done
ln -sfn bin "$dir/sbin"
mkdir -p "$dir/usr"
ln -sfn ../bin "$dir/usr/bin"
ln -sfn ../bin "$dir/usr/sbin"
echo "root:x:0:0:root:/root:/bin/sh" >"$dir/etc/passwd"
echo "nobody:x:65534:65534:nobody:/:/bin/false" >>"$dir/etc/passwd"
echo "root:x:0:" >"$dir/etc/group"
echo "nogroup:x:65534:" >>"$dir/etc/group"
