#!/bin/bash
# One virtual machine of the VM tier: Debian with systemd as PID 1 on
# cgroup v2, booted by qemu from an image of test/vm/image.sh, on a
# throw-away disk overlay; commands over ssh to a loopback-forwarded port.
#
#   vm.sh boot DIST        boot (a new overlay if none; else boot it again)
#   vm.sh ssh CMD…         run CMD in the guest as root (stdin passes through)
#   vm.sh copy FILE… DIR   copy host files into the guest's DIR
#   vm.sh reboot           `systemctl reboot` and wait until it is back
#   vm.sh poweroff         `systemctl poweroff` and wait for qemu to exit
#   vm.sh crash            a power cut: qemu killed, no shutdown
#   vm.sh down             kill qemu if it runs and remove the overlay
#   vm.sh console          the guest's serial console so far
#   vm.sh hostport PORT    the host's loopback port forwarded to the guest's
#                          TCP PORT (one of PODUNIT_VM_FORWARD)
#
# PODUNIT_VM_DIR (default /var/lib/podunit-vm) holds the images and, under
# run/, this VM's overlay, pid file, ports and console log. One VM at a time.
# PODUNIT_VM_FORWARD (default 80) lists the guest's TCP ports that qemu's
# user network forwards from free ports on the host's 127.0.0.1, besides ssh.
# qemu uses KVM where the host really has it (kvm_intel or kvm_amd), TCG
# otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${PODUNIT_VM_DIR:-/var/lib/podunit-vm}
run=$root/run
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}

log() { printf 'vm: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

qemu_pid() { # the running qemu's pid, if any
	local p
	p=$(cat "$run/qemu.pid" 2>/dev/null) || return 1
	[ -n "$p" ] && [ -d "/proc/$p" ] && grep -q qemu "/proc/$p/comm" 2>/dev/null && echo "$p"
}

sshv() {
	local port image
	port=$(cat "$run/port") image=$(cat "$run/image")
	ssh -q -i "$image/id_ed25519" -p "$port" \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		-o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=6 \
		-o ControlMaster=auto -o ControlPath="$run/ssh.ctl" -o ControlPersist=120 \
		root@127.0.0.1 "$@"
}

forget_ssh() { ssh -q -o ControlPath="$run/ssh.ctl" -O exit root@127.0.0.1 2>/dev/null || true; rm -f "$run/ssh.ctl"; }

wait_ssh() { # until the guest answers over ssh and its manager has booted
	local deadline=$((SECONDS + BOOT_TIMEOUT)) state= rc
	while ((SECONDS < deadline)); do
		qemu_pid >/dev/null || { tail -30 "$run/console.log" >&2 || true; die "qemu exited"; }
		# is-system-running exits 0 only when running; ssh exits 255 when
		# it cannot reach the guest.
		rc=0
		state=$(sshv systemctl is-system-running 2>/dev/null) || rc=$?
		if [ "$rc" != 255 ] && [ -n "$state" ]; then
			case $state in running | degraded) return 0 ;; esac
			# Pods' units started at boot are jobs of the boot, which ends
			# when they are ready: a slow emulated machine may take minutes.
			# The guest is up once they are all that is left; the steps
			# wait for the pods themselves.
			if [ "$state" = starting ] && sshv systemctl list-jobs --no-legend --plain 2>/dev/null |
				awk '$2 !~ /^(pod|podunit-handoff)-.*\.service$/ { other = 1 } END { exit other }'; then
				return 0
			fi
		else
			state=
			forget_ssh
		fi
		sleep 2
	done
	tail -40 "$run/console.log" >&2 || true
	if [ -n "$state" ]; then
		# The guest answers, its manager has not finished booting: what it
		# still waits for.
		echo "--- the guest's manager is $state; its jobs and the units that took longest:" >&2
		sshv systemctl list-jobs --no-pager >&2 || true
		sshv systemd-analyze blame --no-pager 2>/dev/null | head -15 >&2 || true
		sshv systemctl list-units --no-pager --state=activating,failed 'pod-*' >&2 || true
	fi
	die "the guest did not boot within $BOOT_TIMEOUT s${state:+ (its manager is $state)}"
}

free_port() { # [FIRST]: a port nothing listens on, from FIRST (20022) on
	local p first=${1:-20022}
	for p in $(seq "$first" $((first + 100))); do
		[ -z "$(ss -Hltn "sport = :$p")" ] && { echo "$p"; return; }
	done
	die "no free port"
}

boot() {
	local dist=$1 image accel
	qemu_pid >/dev/null && die "a VM is running (pid $(qemu_pid)); vm.sh down first"
	mkdir -p "$run"
	if [ ! -f "$run/disk.qcow2" ]; then
		image=$("$here/image.sh" "$dist")
		qemu-img create -q -f qcow2 -F raw -b "$image/base.img" "$run/disk.qcow2"
		echo "$image" >"$run/image"
		echo "$dist" >"$run/dist"
	fi
	[ "$(cat "$run/dist")" = "$dist" ] || die "the disk is $(cat "$run/dist")'s; vm.sh down first"
	image=$(cat "$run/image")
	if grep -qsE '^kvm_(intel|amd) ' /proc/modules && [ -w /dev/kvm ]; then
		accel="-accel kvm -cpu host"
	else
		accel="-accel tcg,thread=multi,tb-size=256 -cpu qemu64"
	fi
	free_port >"$run/port"
	local fwd="hostfwd=tcp:127.0.0.1:$(cat "$run/port")-:22" gp first=20200
	rm -f "$run"/fwd-*
	for gp in ${PODUNIT_VM_FORWARD-80}; do
		free_port $first >"$run/fwd-$gp"
		first=$(($(cat "$run/fwd-$gp") + 1))
		fwd+=",hostfwd=tcp:127.0.0.1:$(cat "$run/fwd-$gp")-:$gp"
	done
	forget_ssh
	log "booting $dist ($accel), ssh on 127.0.0.1:$(cat "$run/port")"
	# shellcheck disable=SC2086
	qemu-system-x86_64 $accel -machine q35 -smp 2 -m 2048 \
		-kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
		-append "root=/dev/vda rw console=ttyS0,115200 mitigations=off quiet" \
		-drive "file=$run/disk.qcow2,if=virtio,format=qcow2,cache=unsafe" \
		-netdev "user,id=net0,restrict=on,$fwd" \
		-device virtio-net-pci,netdev=net0 \
		-chardev "socket,id=ser0,path=$run/serial.sock,server=on,wait=off,logfile=$run/console.log,logappend=on" \
		-serial chardev:ser0 -display none -monitor none \
		-daemonize -pidfile "$run/qemu.pid"
	local start=$SECONDS
	wait_ssh
	log "up in $((SECONDS - start)) s"
}

wait_exit() { # seconds: until qemu has exited
	local p deadline=$((SECONDS + $1))
	p=$(qemu_pid) || return 0
	while [ -d "/proc/$p" ] && ((SECONDS < deadline)); do sleep 0.5; done
	[ ! -d "/proc/$p" ]
}

reboot_vm() {
	local start=$SECONDS boot_id console_at
	console_at=$(stat -c %s "$run/console.log" 2>/dev/null || echo 0)
	boot_id=$(sshv cat /proc/sys/kernel/random/boot_id)
	sshv systemctl reboot || true
	forget_ssh
	# Until the guest answers with another boot.
	local deadline=$((SECONDS + BOOT_TIMEOUT))
	while ((SECONDS < deadline)); do
		sleep 3
		qemu_pid >/dev/null || die "qemu exited during the reboot"
		if id=$(sshv cat /proc/sys/kernel/random/boot_id 2>/dev/null) && [ "$id" != "$boot_id" ]; then
			wait_ssh
			log "rebooted in $((SECONDS - start)) s"
			return 0
		fi
		forget_ssh
	done
	# Seen once under TCG (2026-12-07, Debian 12's kernel, while rebooting
	# after the story's steps): both vCPUs spinning in the guest's kernel,
	# its console full of soft lockups and RCU stalls, for minutes. That is
	# the emulation, not a unit that does not stop (systemd times those
	# out); the guest is power-cycled once, loudly, and the caller's checks
	# of what comes back go on. Anything else is a failure.
	if tail -c +"$((console_at + 1))" "$run/console.log" | grep -qE 'soft lockup|rcu_preempt detected stalls'; then
		log "the guest's kernel locked up while rebooting (soft lockups and RCU stalls on its console, above the caller's log): power-cycling it once"
		tail -c +"$((console_at + 1))" "$run/console.log" | grep -E 'soft lockup|rcu_preempt detected stalls' | tail -4 >&2
		crash
		boot "$(cat "$run/dist")"
		log "back by a power cycle, $((SECONDS - start)) s after the reboot began"
		return 0
	fi
	die "the guest did not come back within $BOOT_TIMEOUT s"
}

poweroff_vm() {
	sshv systemctl poweroff || true
	forget_ssh
	wait_exit 120 || die "the guest did not power off in 120 s"
	rm -f "$run/qemu.pid"
}

crash() {
	local p
	p=$(qemu_pid) || die "no VM runs"
	kill -9 "$p"
	wait_exit 10 || die "qemu $p did not die"
	forget_ssh
	rm -f "$run/qemu.pid"
}

down() {
	local p
	forget_ssh
	if p=$(qemu_pid); then
		kill -9 "$p"
		wait_exit 10 || log "qemu $p did not die"
	fi
	rm -rf "$run"
}

cmd=${1:-}
shift || true
case $cmd in
boot) boot "${1:?vm.sh boot DIST}" ;;
ssh) sshv "$@" ;;
copy)
	dir=${*: -1}
	for f in "${@:1:$#-1}"; do
		sshv "mkdir -p '$dir' && cat >'$dir/$(basename "$f")'" <"$f"
	done
	;;
reboot) reboot_vm ;;
poweroff) poweroff_vm ;;
crash) crash ;;
down) down ;;
console) cat "$run/console.log" ;;
hostport) cat "$run/fwd-${1:?vm.sh hostport PORT}" ;;
*) sed -n '2,/^set/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
