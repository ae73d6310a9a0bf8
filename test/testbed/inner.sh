#!/bin/bash
# Runs as PID 1 of the test bed's fresh PID, mount, UTS, IPC and network
# namespaces (started by testbed.sh through unshare). It makes every path the
# test bed writes private, sets up the container runtime named in
# $TB/runtime (containerd or crio), then becomes a systemd manager.
#
# What the host sees change: nothing under /etc, /var, /usr, /tmp or
# /run. Writes land in overlay upper directories and bind mounts under the
# test bed directory, which testbed.sh removes on teardown.
set -euo pipefail
TB=$1            # the test bed directory on the host
CG=$2            # the cgroup name (same in every hierarchy)

# The host's cgroup hierarchies: "mountpoint fstype superoptions" per line.
hierarchies=$(awk '$5 ~ "^/sys/fs/cgroup/" { split($0, a, " - "); split(a[2], b, " "); print $5, b[1], b[3] }' /proc/self/mountinfo)

# Own cgroup subtree in every hierarchy, so systemd manages below it and
# teardown can remove exactly what it created.
while read -r mnt _ _; do
	mkdir -p "$mnt/$CG"
	if [ -e "$mnt/cpuset.cpus" ]; then # a new cpuset takes no task until it has CPUs and nodes
		cat "$mnt/cpuset.cpus" >"$mnt/$CG/cpuset.cpus"
		cat "$mnt/cpuset.mems" >"$mnt/$CG/cpuset.mems"
	fi
	echo 0 >"$mnt/$CG/cgroup.procs"
done <<<"$hierarchies"

# A test bed booted with CGROUPNS=1 (testbed.sh up) has its own cgroup
# namespace rooted at that subtree, as a container manager gives one: the
# cgroup mounts below then show the subtree as /, so a program that joins
# cgroup paths it computes to /sys/fs/cgroup (the kubelet's QoS cgroups)
# finds what its systemd made. unshare(CLONE_NEWCGROUP) takes the caller's
# cgroup as the root, so it is done here, after the move, and this script
# starts again in it (still PID 1).
if [ -e "$TB/cgroupns" ] && [ -z "${PODUNIT_TESTBED_CGROUPNS:-}" ]; then
	PODUNIT_TESTBED_CGROUPNS=1 exec unshare --cgroup "$0" "$@"
fi

# A private tmpfs under the hierarchies: systemd remounts /sys/fs/cgroup
# read-only once it has set up, and a remount changes the superblock, which
# the host shares unless this namespace has its own.
mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
while read -r mnt fstype opts; do
	mkdir -p "$mnt"
	if [ "$fstype" = cgroup2 ]; then
		mount -t cgroup2 cgroup2 "$mnt"
	else
		# The same controllers (or name=) mount the same hierarchy again.
		controllers=$(tr ',' '\n' <<<"$opts" | grep -Ev '^(rw|ro|relatime|nosuid|nodev|noexec)$' | paste -sd, -)
		[[ $controllers == name=* ]] && controllers=none,$controllers
		mount -t cgroup -o "$controllers" cgroup "$mnt"
	fi
done <<<"$hierarchies"

hostname "$CG"
ip link set lo up

mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/podunit-testbed
mount --bind "$TB" /run/podunit-testbed
S=/run/podunit-testbed/state

# What the host's image starts at boot, read before the overlays hide the
# host's /etc under the test bed's own.
host_wants=$(for wants in /lib/systemd/system/sysinit.target.wants /etc/systemd/system/*.wants; do
	for u in "$wants"/*; do [ -e "$u" ] || [ -L "$u" ] && basename "$u"; done
done; true)

# /usr too: a package installed in the test bed (make test-packages) puts
# its binaries and units there.
for d in etc var usr; do
	name=${d//\//-}
	mkdir -p "$S/upper/$name" "$S/work/$name"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$S/upper/$name,workdir=$S/work/$name" "/$d"
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
mount -t proc proc /proc

# The container runtime testbed.sh up chose: containerd or crio.
runtime=$(cat "$TB/runtime" 2>/dev/null) || runtime=containerd
case $runtime in
containerd)
	# containerd's overlay snapshotter cannot sit on an overlay: a plain directory.
	mkdir -p "$S/containerd" /var/lib/containerd
	mount --bind "$S/containerd" /var/lib/containerd
	;;
crio)
	# Nor can CRI-O's overlay storage.
	mkdir -p "$S/containers" /var/lib/containers
	mount --bind "$S/containers" /var/lib/containers
	;;
*) echo "inner.sh: unknown runtime $runtime" >&2; exit 1 ;;
esac

# Only what the test bed needs may start: mask everything the host's image
# would start at boot. tmpfiles in particular once emptied a host's /tmp.
# (The host's own units: what is enabled inside, podunit's units, starts
# when the test bed boots again.)
mkdir -p /run/systemd/system
keep=" systemd-journald.service systemd-journal-flush.service dbus.socket $runtime.service "
mask() { [[ $keep == *" $1 "* ]] || ln -sf /dev/null "/run/systemd/system/$1"; }
for u in $host_wants; do mask "$u"; done
for u in systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service \
	systemd-tmpfiles-clean.service systemd-tmpfiles-clean.timer \
	systemd-remount-fs.service systemd-fsck-root.service systemd-logind.service \
	systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service \
	systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-hwdb-update.service \
	systemd-initctl.socket systemd-journald-audit.socket systemd-update-done.service \
	ldconfig.service getty.target console-getty.service postgresql.service \
	cron.service ssh.service docker.service docker.socket apparmor.service \
	systemd-networkd.service systemd-resolved.service tmp.mount; do
	mask "$u"
done

cp "$TB/podunit-testbed.target" /run/systemd/system/
mkdir -p /run/systemd/system/podunit-testbed.target.d
printf '[Unit]\nRequires=%s.service\nAfter=%s.service\n' "$runtime" "$runtime" \
	>/run/systemd/system/podunit-testbed.target.d/runtime.conf
mkdir -p /etc/cni/net.d
cp "$TB/cni.conflist" /etc/cni/net.d/10-podunit.conflist
case $runtime in
containerd)
	mkdir -p /etc/containerd
	cp "$TB/containerd.toml" /etc/containerd/config.toml
	;;
crio)
	# crio and pinns as test/crio/build.sh built them (copied to $TB/crio).
	ln -sf /run/podunit-testbed/crio/crio /run/podunit-testbed/crio/pinns /usr/local/bin/
	mkdir -p /etc/crio
	cp "$TB/crio.conf" /etc/crio/crio.conf
	cp "$TB/crio.service" /run/systemd/system/crio.service
	;;
esac

export container=podunit-testbed
exec /lib/systemd/systemd --system --unit=podunit-testbed.target --log-target=console --show-status=no </dev/null
