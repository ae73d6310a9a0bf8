#!/bin/bash
# The side-by-side benchmark of the VM tier: in one Debian VM (13 by
# default), in the same run, the same one-container pod (a web server on a
# hostPort) brought up
#   - by podunit: its manifest written → the hostPort answers, and
#     `systemctl restart` of its unit → READY (systemd's own spawn is
#     `make bench`'s to measure: under TCG its timestamps do not separate
#     it);
#   - by `podman kube play` (Debian's podman), the anchor users would pick
#     instead: the command → the hostPort answers, and its systemd unit
#     podman-kube@.service started → READY;
#   - by the raw CRI calls podshim makes (test/crifloor): the floor;
# and each one's memory for the pod once it is up (Private_Dirty: podunit's
# podshim and the runtime's shim; podman's conmons; the floor's shim), with
# podshim's own floor beside it: test/bench/leanshim, a Go shim without
# gRPC or Kubernetes' types, started with podshim's environment at the
# same moment and read at the same moment.
# TCG makes absolute times meaningless: docs/benchmarks.md keeps the
# ratios to the floor of the same run. Always powers the VM off.
#   bench.sh DIST DEB IMAGES_DIR CRIFLOOR LEANSHIM [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dist=$1 deb=$2 images=$3 floor=$4 lean=$5 rounds=${6:-3}
vm=$here/vm.sh
g() { "$vm" ssh "$@"; }
# shellcheck source=test/vm/guest.sh
. "$here/guest.sh"
log() { printf 'bench: %s\n' "$*" >&2; }

trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
trap '"$vm" down || true' EXIT
"$vm" down 2>/dev/null || true
export PODUNIT_VM_EXTRA="podman catatonit nftables aardvark-dns"
"$vm" boot "$dist"

log "installing podunit and podman"
"$vm" copy "$deb" "$floor" "$lean" /root
g "chmod 0755 /root/$(basename "$floor") /root/$(basename "$lean")"
g "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/$(basename "$deb") podman catatonit nftables aardvark-dns >/dev/null"
configure_containerd
import_images "$images" pause:1 nginx:1
g "id=\$(podman load -q -i /root/images/nginx.tar | awk '{print \$NF}') && podman tag \"\${id#sha256:}\" localhost/podunit/nginx:1"
g podunit doctor >/dev/null || { g podunit doctor; exit 1; }
facts="$(g "systemctl --version | awk 'NR==1 {print \"systemd\", \$2}'; containerd --version | awk '{print \"containerd\", \$3}'; podman --version; echo THP \$(cat /sys/kernel/mm/transparent_hugepage/enabled)")"

g "cat >/root/web.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: localhost/podunit/nginx:1
    ports: [{containerPort: 80, hostPort: 8080}]
YAML
# A first podman run off the clock: it builds its pause image once.
g "podman kube play /root/web.yaml >/dev/null && podman kube down /root/web.yaml >/dev/null"

# In the guest: seconds from now until the hostPort answers, after ACTION.
served() {
	g "t0=\$(date +%s.%N); $1 >/dev/null; until busybox wget -q -O /dev/null -T 1 http://127.0.0.1:8080/ 2>/dev/null; do sleep 0.02; done; awk -v a=\"\$t0\" -v b=\"\$(date +%s.%N)\" 'BEGIN { printf \"%.3f\", b - a }'"
}
# Private_Dirty, in KiB, of the processes named (pgrep -x), summed.
private() {
	g "for p in \$(pgrep -x '$1'); do cat /proc/\$p/smaps_rollup; done | awk '/^Private_Dirty:/ { s += \$2 } END { print s + 0 }'"
}
# Start → READY of a unit, in seconds: from leaving inactive to active.
ready() {
	g "systemctl show -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic $1" |
		awk -F= '{ v[$1] = $2 } END { printf "%.3f\n", (v["ActiveEnterTimestampMonotonic"] - v["InactiveExitTimestampMonotonic"]) / 1e6 }'
}
free_port() {
	local deadline=$((SECONDS + 60))
	while g "busybox wget -q -O /dev/null -T 1 http://127.0.0.1:8080/" 2>/dev/null; do
		((SECONDS < deadline)) || { log "port 8080 still answers"; exit 1; }
		sleep 1
	done
}
settle=15 # seconds after serving before memory is read: the Go collectors have run
# Where podunit's file → serving went, in ms, from what is recorded anyway
# (make bench's start trace, in the VM): the guest's clock at the write and
# at the first answer; systemd's fork stamps of the sync and the pod's
# unit and its READY stamp; the sync's timings line (its pass began at,
# that long after its main; units changed at); podshim's start timings
# (its main, after the re-exec where there is one). Prints "stage ms" lines.
trace_podunit() {
	g "w=\$(awk '{print \$1 * 1e6}' /proc/uptime); cp /root/web.yaml /etc/podunit/manifests/web.yaml
	until busybox wget -q -O /dev/null -T 1 http://127.0.0.1:8080/ 2>/dev/null; do sleep 0.02; done
	s=\$(awk '{print \$1 * 1e6}' /proc/uptime)
	sf=\$(systemctl show -P ExecMainStartTimestampMonotonic podunit-sync.service)
	line=\$(journalctl -u podunit-sync.service -o cat --no-pager | grep 'unit(s) .* into the pass' | tail -1)
	pf=\$(systemctl show -P ExecMainStartTimestampMonotonic pod-web.service)
	rd=\$(systemctl show -P ActiveEnterTimestampMonotonic pod-web.service)
	for i in \$(seq 50); do st=\$(journalctl -u pod-web.service -o cat --no-pager | grep 'start timings' | tail -1); [ -n \"\$st\" ] && break; sleep 0.1; done
	echo \"\$w \$s \$sf \$pf \$rd | \$line | \$st\"" | awk -F'|' '
	{
		split($1, v, " "); w = v[1]; s = v[2]; sf = v[3]; pf = v[4]; rd = v[5]
		began = 0; after = 0; changed = 0; pm = 0
		if (match($2, /CLOCK_MONOTONIC [0-9]+/)) began = substr($2, RSTART + 16, RLENGTH - 16)
		if (match($2, /[0-9.]+ ms after the process/)) after = substr($2, RSTART, RLENGTH) + 0
		if (match($2, /units changed [0-9.]+/)) changed = substr($2, RSTART + 14, RLENGTH - 14)
		if (match($3, /mainMonotonicUs=[0-9]+/)) pm = substr($3, RSTART + 16, RLENGTH - 16)
		ms = 1000
		printf "written→sync-forked %.0f\n", (sf - w) / ms
		printf "sync-forked→sync-main %.0f\n", (began - after * ms - sf) / ms
		printf "sync-main→pass %.0f\n", after
		printf "pass→unit-started %.0f\n", changed
		printf "unit-started→podshim-forked %.0f\n", (pf - began - changed * ms) / ms
		printf "podshim-forked→podshim-main %.0f\n", (pm - pf) / ms
		printf "podshim-main→READY %.0f\n", (rd - pm) / ms
		printf "READY→serving %.0f\n", (s - rd) / ms
		printf "written→serving %.0f\n", (s - w) / ms
	}'
}

rows=() traces=()
for r in $(seq "$rounds"); do
	log "round $r of $rounds"
	# The floor.
	out=$(g "/root/crifloor -f /root/web.yaml")
	t_floor=${out%% *}
	sleep $settle
	m_floor=$(private containerd-shim)
	g "/root/crifloor -f /root/web.yaml -rm ${out#* }"
	free_port

	# podunit: the file → serving; systemctl restart → READY. podshim's
	# floor, leanshim, starts with it, with its unit's environment.
	g "systemd-run -q --unit bench-leanshim -p Environment=GOGC=50 -p Environment=GODEBUG=disablethp=1 /root/$(basename "$lean")"
	trace=$(trace_podunit)
	t_file=$(awk '$1 == "written→serving" { printf "%.3f", $2 / 1000 }' <<<"$trace")
	traces+=("$trace")
	log "podunit's stages (ms): $(paste -sd' ' <<<"$trace")"
	sleep $settle
	m_shim=$(g "cat /proc/\$(systemctl show -P MainPID pod-web.service)/smaps_rollup" | awk '/^Private_Dirty:/ { print $2 }')
	m_lean=$(g "cat /proc/\$(systemctl show -P MainPID bench-leanshim.service)/smaps_rollup" | awk '/^Private_Dirty:/ { print $2 }')
	log "podshim: $(g "grep -E '^(AnonHugePages|THP_enabled)' /proc/\$(systemctl show -P MainPID pod-web.service)/smaps_rollup /proc/\$(systemctl show -P MainPID pod-web.service)/status" | tr -s ' \n' ' ')"
	g "systemctl stop bench-leanshim.service"
	m_rt=$(private containerd-shim)
	g systemctl restart pod-web.service
	t_ready=$(ready pod-web.service)
	g "rm /etc/podunit/manifests/web.yaml; while systemctl is-active --quiet pod-web.service; do sleep 0.2; done"
	free_port

	# podman kube play: the command → serving; its systemd unit → READY.
	t_play=$(served "podman kube play /root/web.yaml")
	sleep $settle
	m_play=$(private conmon)
	n_play=$(g "pgrep -cx conmon || true")
	g "podman kube down /root/web.yaml >/dev/null"
	free_port
	unit=$(g "echo podman-kube@\$(systemd-escape /root/web.yaml).service")
	g systemctl start "$unit"
	t_pready=$(ready "$unit")
	sleep $settle
	m_punit=$(private conmon)
	n_punit=$(g "pgrep -cx conmon || true")
	g systemctl stop "$unit"
	free_port

	rows+=("$r $t_floor $t_file $t_ready $t_play $t_pready $m_floor $m_shim $m_rt $m_play $n_play $m_punit $n_punit $m_lean")
	log "round $r: floor ${t_floor}s; podunit file→serving ${t_file}s, start→READY ${t_ready}s; podman kube play→serving ${t_play}s, podman-kube@ start→READY ${t_pready}s"
done
containerd_kib=$(private containerd)

echo
echo "$dist: $(echo "$facts" | paste -sd, -)"
printf '%-5s %7s %12s %13s %11s %13s | %8s %14s %9s %14s %14s\n' round floor podunit-file podunit-start podman-play podman-unit \
	floor-shim podshim+shim leanshim podman-play podman-kube@
for row in "${rows[@]}"; do
	read -r r tf tfi tr tp tpr mf ms mr mp np mpu npu ml <<<"$row"
	printf '%-5s %6ss %11ss %12ss %10ss %12ss | %6s K %6s+%-5s K %7s K %6s K (%s) %6s K (%s)\n' "$r" "$tf" "$tfi" "$tr" "$tp" "$tpr" \
		"$mf" "$ms" "$mr" "$ml" "$mp" "$np" "$mpu" "$npu"
done
# Medians and spreads of the times (the means below hide one slow round).
median() { sort -n | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f (%.3f–%.3f)", m, v[1], v[NR] }'; }
col() { printf '%s\n' "${rows[@]}" | awk -v c="$1" '{ print $c }' | median; }
echo
echo "medians (min–max) over ${#rows[@]} rounds, seconds:"
echo "  raw CRI floor, calls → serving     $(col 2)"
echo "  podunit, file written → serving    $(col 3)"
echo "  podunit, systemctl start → READY   $(col 4)"
echo "  podman kube play → serving         $(col 5)"
echo "  podman-kube@ start → READY         $(col 6)"
echo
echo "podunit, file written → serving, by stage: median (min–max) over ${#traces[@]} rounds, ms"
printf '%s\n' "${traces[@]}" | awk '{ print $1 }' | awk '!seen[$0]++' | while read -r stage; do
	printf '  %-30s %s\n' "$stage" "$(printf '%s\n' "${traces[@]}" | awk -v s="$stage" '$1 == s { print $2 }' | median)"
done
# Means and ratios to the floor.
printf '%s\n' "${rows[@]}" | awk -v ck="$containerd_kib" '
	{ n++; f += $2; fi += $3; r += $4; p += $5; pr += $6; mf += $7; ms += $8; mr += $9; mp += $10; mpu += $12; ml += $14 }
	END {
		printf "\nmeans over %d rounds (seconds; ratio to the floor):\n", n
		printf "  raw CRI floor, calls → serving     %6.3f  1.00x\n", f / n
		printf "  podunit, file written → serving    %6.3f  %.2fx\n", fi / n, fi / f
		printf "  podunit, systemctl start → READY   %6.3f  %.2fx\n", r / n, r / f
		printf "  podman kube play → serving         %6.3f  %.2fx\n", p / n, p / f
		printf "  podman-kube@ start → READY         %6.3f  %.2fx\n", pr / n, pr / f
		printf "memory for the pod, Private_Dirty (KiB):\n"
		printf "  floor: the runtime shim            %6d\n", mf / n
		printf "  podunit: podshim + runtime shim    %6d + %d = %d\n", ms / n, mr / n, (ms + mr) / n
		printf "  podshim against its Go floor       %6d / %d = %.2fx (leanshim, same environment, same moment)\n", ms / n, ml / n, ms / ml
		printf "  podman kube play: conmons          %6d\n", mp / n
		printf "  podman-kube@: conmons              %6d\n", mpu / n
		printf "  (containerd itself, shared by every pod: %d; podman has no daemon)\n", ck
	}'
