#!/bin/bash
# The podunit test bed: a private systemd manager with journald, D-Bus and
# a container runtime (containerd with runc, or CRI-O with crun; CNI bridge +
# portmap) as real services, in its own PID, mount, network, UTS and IPC
# namespaces. Nothing it writes reaches the host's /etc, /var, /usr, /tmp or
# /run (see inner.sh).
#
#   testbed.sh up                 boot it (idempotent: fails if already up)
#   testbed.sh down               power it off and remove its state
#   testbed.sh poweroff           power it off cleanly, keeping its disk (state)
#   testbed.sh crash              cut its power: SIGKILL to its systemd, so
#                                 every process in it dies at once; disk kept
#   testbed.sh boot               boot it again from the kept disk: /run and
#                                 /tmp empty, /etc, /var, containerd's store as
#                                 they were (a reboot is poweroff + boot)
#   testbed.sh install DESTDIR    copy an installed tree (make install DESTDIR=…) into it
#   testbed.sh exec CMD…          run CMD inside it (stdin/stdout pass through)
#   testbed.sh run BINARY ARGS…   copy a host binary into it and run it there
#   testbed.sh pid                print the host PID of its systemd
#   testbed.sh runtime            print its runtime: containerd or crio
#
# PODUNIT_TESTBED_DIR (default /var/lib/podunit-testbed/default) holds its
# state; it must not be under /tmp, /var/tmp or /run, which are private
# inside. Test beds with different directories can run side by side.
# CGROUPNS=1 at `up` gives the test bed its own cgroup namespace (what the
# real kubelet needs: test/kubelet); kept in $PODUNIT_TESTBED_DIR/cgroupns.
# RUNTIME (containerd, the default, or crio) picks the runtime at `up`; the
# test bed keeps it in $PODUNIT_TESTBED_DIR/runtime (inside:
# /run/podunit-testbed/runtime) for every later command. CRI-O is built by
# test/crio/build.sh (cached) and runs as crio.service with
# test/testbed/crio.conf.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
TB=${PODUNIT_TESTBED_DIR:-/var/lib/podunit-testbed/default}
# The cgroup subtree (in every hierarchy) this test bed's systemd manages.
CG=podunit-testbed-$(basename "$TB")
BUSYBOX_IMAGE=localhost/podunit/busybox:1.35
PAUSE_IMAGE=localhost/podunit/pause:1
NGINX_IMAGE=localhost/podunit/nginx:1
# CRI-O's image store, as test/testbed/crio.conf sets it (skopeo's syntax).
CRIO_STORE='[overlay@/var/lib/containers/storage+/run/containers/storage]'
CRIO_SOCKET=/run/crio/crio.sock

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

pid() { # the host PID of the test bed's systemd, if it runs
	local p
	p=$(cat "$TB/pid" 2>/dev/null) || return 1
	[ -n "$p" ] && [ -d "/proc/$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && echo "$p"
}

enter() { # run a command in every namespace of the test bed
	local p
	p=$(pid) || die "not running (make testbed-up)"
	nsenter -t "$p" -m -p -n -u -i $([ -e "$TB/cgroupns" ] && echo -C) -- "$@"
}

wait_for() { # seconds command...
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

up() {
	case $TB in /tmp/* | /var/tmp/* | /run/*) die "PODUNIT_TESTBED_DIR=$TB is hidden inside the test bed";; esac
	if pid >/dev/null; then die "already running (pid $(pid)); testbed.sh down first"; fi
	local rt=${RUNTIME:-containerd}
	case $rt in containerd | crio) ;; *) die "RUNTIME=$rt: containerd or crio";; esac
	cleanup_state
	mkdir -p "$TB/images" "$TB/state"
	"$here/images.sh" "$TB/images"
	cp "$here/inner.sh" "$here/podunit-testbed.target" "$TB/"
	cp "$here/../../packaging/cni/10-podunit.conflist" "$TB/cni.conflist"
	echo "$rt" >"$TB/runtime"
	rm -f "$TB/cgroupns"
	[ -z "${CGROUPNS:-}" ] || touch "$TB/cgroupns"
	if [ "$rt" = crio ]; then
		local bin
		bin=$("$here/../crio/build.sh") || die "building crio failed"
		mkdir -p "$TB/crio"
		cp "$bin/crio" "$bin/pinns" "$TB/crio/"
		cp "$here/crio.conf" "$here/crio.service" "$here/runc-oom-clamp" "$TB/"
	else
		cp "$here/containerd.toml" "$TB/containerd.toml"
	fi
	boot
	import_image "$BUSYBOX_IMAGE" "$TB/images/busybox.tar"
	import_image "$PAUSE_IMAGE" "$TB/images/pause.tar"
	import_image "$NGINX_IMAGE" "$TB/images/nginx.tar"
	log "up: systemd pid $(pid); enter with: nsenter -t $(pid) -m -p -n -u -i"
}

# boot starts the test bed's systemd on the state in $TB/state (new or
# kept from before a poweroff or crash) and waits for its target and for
# the runtime.
boot() {
	if pid >/dev/null; then die "already running (pid $(pid))"; fi
	[ -d "$TB/state" ] || die "no state in $TB to boot from (testbed.sh up makes one)"
	# The host's mount table must come out of a boot unchanged: a remount
	# inside that reaches a superblock the host shares would show here.
	cat /proc/self/mounts >"$TB/host-mounts.before"
	log "booting systemd in $TB"
	setsid unshare --pid --fork --mount --uts --ipc --net --propagation private \
		"$TB/inner.sh" "$TB" "$CG" >"$TB/boot.log" 2>&1 </dev/null &
	local unshare_pid=$! child=
	for _ in $(seq 100); do
		child=$(awk '{print $1}' "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null) || child=
		[ -n "$child" ] && [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ] && break
		kill -0 "$unshare_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$child" ] || [ "$(cat "/proc/$child/comm" 2>/dev/null)" != systemd ]; then
		cat "$TB/boot.log" >&2
		[ -n "$child" ] && kill -9 "$child" 2>/dev/null
		cleanup_cgroups
		die "systemd did not start"
	fi
	echo "$child" >"$TB/pid"
	echo "$unshare_pid" >"$TB/unshare.pid"

	if ! wait_for 90 enter systemctl is-active --quiet podunit-testbed.target; then
		enter systemctl --no-pager --failed >&2 || true
		tail -50 "$TB/boot.log" >&2
		down
		die "podunit-testbed.target did not become active"
	fi
	cat /proc/self/mounts >"$TB/host-mounts.after"
	# What a remount or a leaked mount shows: a line that was not there
	# before. (Lines gone are other work on the machine unmounting its
	# own, e.g. another test's network namespaces.)
	local changed
	changed=$(comm -13 <(sort "$TB/host-mounts.before") <(sort "$TB/host-mounts.after"))
	if [ -n "$changed" ]; then
		printf 'new or changed on the host:\n%s\n' "$changed" >&2
		down
		die "booting the test bed changed the host's mounts (above); fix inner.sh before going on"
	fi
	if [ "$(runtime)" = crio ]; then
		# crio.service is Type=notify: active means its socket serves.
		if ! wait_for 30 enter crio status --socket "$CRIO_SOCKET" info; then
			down
			die "crio did not answer"
		fi
	elif ! wait_for 30 enter ctr --address /run/containerd/containerd.sock version; then
		down
		die "containerd did not answer"
	fi
	log "booted: systemd pid $child"
}

runtime() { cat "$TB/runtime" 2>/dev/null || echo containerd; }

import_image() { # name tarball
	if [ "$(runtime)" = crio ]; then
		# Into CRI-O's store while it runs: it reads the store at each call.
		enter skopeo copy -q "oci-archive:$2" "containers-storage:$CRIO_STORE$1" >/dev/null
		enter skopeo inspect --raw "containers-storage:$CRIO_STORE$1" >/dev/null || die "image $1 missing after copy"
		return
	fi
	enter ctr -n k8s.io images import --index-name "$1" "$2" >/dev/null
	# Not "ctr … | grep -q": grep leaving early makes ctr die of SIGPIPE,
	# which pipefail reports as a failure.
	local images
	images=$(enter ctr -n k8s.io images ls -q)
	grep -qx "$1" <<<"$images" || die "image $1 missing after import"
}

down() {
	stop_systemd SIGRTMIN+4
	cleanup_state
}

# stop_systemd ends the test bed's systemd with signal (SIGRTMIN+4: a clean
# poweroff; SIGKILL: a power cut, which the kernel turns into SIGKILL for
# every process of the PID namespace), waits until all of it is gone and
# removes its empty cgroups. The state directory stays.
stop_systemd() {
	local sig=$1 p u
	p=$(pid) || p=
	u=$(cat "$TB/unshare.pid" 2>/dev/null) || u=
	if [ -n "$p" ]; then
		log "stopping systemd pid $p with $sig"
		kill -s "$sig" "$p" 2>/dev/null || true
		for _ in $(seq 300); do [ -d "/proc/$p" ] || break; sleep 0.1; done
		if [ -d "/proc/$p" ]; then
			log "systemd pid $p did not power off in 30 s; killing it"
			kill -9 "$p" 2>/dev/null || true
			for _ in $(seq 100); do [ -d "/proc/$p" ] || break; sleep 0.1; done
			# A dying PID namespace's init waits for every process in it, and
			# a frozen one (runc freezes a container's cgroup while it
			# updates it) never dies: thaw them.
			if [ -d "/proc/$p" ]; then
				thaw
				for _ in $(seq 100); do [ -d "/proc/$p" ] || break; sleep 0.1; done
			fi
			[ -d "/proc/$p" ] && log "systemd pid $p still runs: see /proc/$p/status"
		fi
	fi
	if [ -n "$u" ] && [ -d "/proc/$u" ] && [ "$(cat "/proc/$u/comm" 2>/dev/null)" = unshare ]; then
		for _ in $(seq 50); do [ -d "/proc/$u" ] || break; sleep 0.1; done
	fi
	rm -f "$TB/pid" "$TB/unshare.pid"
	cleanup_cgroups
}

thaw() { # every frozen cgroup of the test bed's freezer hierarchy
	local f
	[ -d "/sys/fs/cgroup/freezer/$CG" ] || return 0
	while IFS= read -r -d '' f; do
		if grep -q FROZEN "$f" 2>/dev/null; then
			log "thawing ${f%/freezer.state}"
			echo THAWED >"$f" 2>/dev/null || true
		fi
	done < <(find "/sys/fs/cgroup/freezer/$CG" -name freezer.state -print0)
}

cleanup_cgroups() { # the empty cgroups left in each hierarchy, deepest first
	local h
	for h in /sys/fs/cgroup/*/"$CG"; do
		[ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
}

cleanup_state() {
	cleanup_cgroups
	# The mount namespace is gone with its last process; nothing is mounted here.
	if [ -d "$TB/state" ]; then
		if grep -q " $TB/state" /proc/self/mountinfo; then die "$TB/state still has mounts; not removing it"; fi
		rm -rf "$TB/state"
	fi
	rm -f "$TB/pid" "$TB/unshare.pid"
}

install_tree() { # DESTDIR: copy an installed tree into the test bed's root
	# (--no-overwrite-dir: a directory already there keeps its owner and
	# mode; the tree's top, often a 0700 temporary directory, would make
	# the test bed's / unreadable to every user but root)
	local src=$1 outside
	[ -d "$src" ] || die "no such directory: $src"
	# Only /etc, /usr and /var are the test bed's own (overlays): anything
	# else in the tree would be written to the host's own directories.
	outside=$(find "$src" -mindepth 1 -maxdepth 1 ! -name etc ! -name usr ! -name var -printf '%f ')
	[ -z "$outside" ] || die "install: $src holds $outside: only etc, usr and var are the test bed's own (the rest is the host's)"
	tar -C "$src" -cf - . | enter tar -C / -xf - --no-same-owner --keep-directory-symlink --no-overwrite-dir
	enter systemctl daemon-reload
	# What a package's post-install does: the podunit group (the status
	# socket's) and its directories; named files only, never a whole
	# systemd-tmpfiles run (TESTBED.md).
	local f
	for f in "$src"/usr/local/lib/sysusers.d/*.conf "$src"/usr/lib/sysusers.d/*.conf; do
		[ -e "$f" ] && enter systemd-sysusers "${f#"$src"}"
	done
	for f in "$src"/usr/local/lib/tmpfiles.d/*.conf "$src"/usr/lib/tmpfiles.d/*.conf; do
		[ -e "$f" ] && enter systemd-tmpfiles --create "${f#"$src"}"
	done
	# What an admin of a CRI-O machine does: criEndpoint names its socket.
	if [ "$(runtime)" = crio ] && [ -e "$src/etc/podunit/config.yaml" ]; then
		enter sed -i "s|^criEndpoint:.*|criEndpoint: unix://$CRIO_SOCKET|" /etc/podunit/config.yaml
	fi
	return 0
}

cmd=${1:-}
shift || true
case $cmd in
up) up ;;
down) down ;;
poweroff) stop_systemd SIGRTMIN+4 ;;
crash) stop_systemd SIGKILL ;;
boot) boot ;;
install) install_tree "$@" ;;
exec) enter "$@" ;;
run)
	[ -f "${1:-}" ] || die "run: no such binary: ${1:-}"
	mkdir -p "$TB/bin"
	cp "$1" "$TB/bin/"
	bin=/run/podunit-testbed/bin/$(basename "$1")
	shift
	enter "$bin" "$@"
	;;
pid) pid || die "not running" ;;
runtime) runtime ;;
*) sed -n '2,/^set/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
