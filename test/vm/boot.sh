#!/bin/bash
# Boot with 10 pods, side by side (issue #26): in one Debian VM (13 by
# default), in the same run, the same ten one-container pods (a web server
# each, on hostPorts 8101–8110, from the locally built image) brought up at
# boot
#   - by podunit: their manifests in /etc/podunit/manifests, podunit's
#     units enabled as the package enables them;
#   - by podman's Quadlet: a `.kube` unit per pod in
#     /etc/containers/systemd (Yaml= the same manifest, WantedBy=
#     default.target), as podman's users run pods at boot;
# measured from the service manager's start (systemd's
# UserspaceTimestampMonotonic) to every port answering, by a small unit of
# the guest's own that polls them from early in the boot. Only one side is
# enabled at a boot: the other's units, containerd included for podman's
# boots, are disabled, so neither pays for the other. Rounds alternate, one
# of each first off the clock (first-boot work: podman's pause image,
# caches). TCG makes absolute times meaningless: docs/benchmarks.md keeps
# the ratio podunit / podman of the same run. Always powers the VM off.
#   boot.sh DIST DEB IMAGES_DIR [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dist=$1 deb=$2 images=$3 rounds=${4:-3}
pods=10
vm=$here/vm.sh
g() { "$vm" ssh "$@"; }
# shellcheck source=test/vm/guest.sh
. "$here/guest.sh"
log() { printf 'boot: %s\n' "$*" >&2; }

trap 'echo "boot: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
trap '"$vm" down || true' EXIT
"$vm" down 2>/dev/null || true
export PODUNIT_VM_EXTRA="podman catatonit nftables aardvark-dns"
# A boot ends once the poller saw every pod serve (its job is the boot's).
export BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
"$vm" boot "$dist"

log "installing podunit and podman"
"$vm" copy "$deb" /root
g "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/$(basename "$deb") podman catatonit nftables aardvark-dns >/dev/null"
configure_containerd
import_images "$images" pause:1 nginx:1
g "id=\$(podman load -q -i /root/images/nginx.tar | awk '{print \$NF}') && podman tag \"\${id#sha256:}\" localhost/podunit/nginx:1"
g podunit doctor >/dev/null || { g podunit doctor; exit 1; }
facts="$(g "systemctl --version | awk 'NR==1 {print \"systemd\", \$2}'; containerd --version | awk '{print \"containerd\", \$3}'; podman --version")"
# podunit's units the package enabled: what a podman boot goes without.
podunit_units=$(g "systemctl list-unit-files 'podunit*' --state=enabled --no-legend | awk '{print \$1}' | paste -sd' ' -")
log "podunit's units enabled by the package: $podunit_units"

g "mkdir -p /root/pods /root/quadlet /var/lib/bootbench"
for i in $(seq "$pods"); do
	g "cat >/root/pods/web-$i.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: web-$i}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: localhost/podunit/nginx:1
    ports: [{containerPort: 80, hostPort: $((8100 + i))}]
YAML
	# (systemd's default 90 s start timeout killed every podman kube play
	# of a 10-pod boot under TCG, where each took minutes: given the time
	# podunit's pods get, as a podman user on a slow box would.)
	g "cat >/root/quadlet/web-$i.kube" <<UNIT
[Kube]
Yaml=/root/pods/web-$i.yaml

[Service]
TimeoutStartSec=15min

[Install]
WantedBy=default.target
UNIT
done
# A first podman run off the clock: it builds its pause image once.
g "podman kube play /root/pods/web-1.yaml >/dev/null && podman kube down /root/pods/web-1.yaml >/dev/null"

# The poller: from early in the boot until every port answers, then the
# seconds since the manager started.
g "cat >/usr/local/bin/bootbench" <<SH
#!/bin/sh
left="\$(seq 8101 $((8100 + pods)))"
while [ -n "\$left" ]; do
	still=
	for p in \$left; do
		busybox wget -q -O /dev/null -T 1 http://127.0.0.1:\$p/ 2>/dev/null || still="\$still \$p"
	done
	left=\$still
	[ -z "\$left" ] || sleep 0.1
done
awk -v start="\$(systemctl show -P UserspaceTimestampMonotonic)" '{ printf "%.2f\n", \$1 - start / 1e6 }' /proc/uptime >/var/lib/bootbench/result
SH
g "chmod 0755 /usr/local/bin/bootbench && cat >/etc/systemd/system/bootbench.service" <<'UNIT'
[Unit]
Description=Boot benchmark: seconds from the manager's start to every pod serving
DefaultDependencies=no
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/bin/bootbench
TimeoutStartSec=15min

[Install]
WantedBy=sysinit.target
UNIT
g systemctl enable bootbench.service 2>/dev/null

as_podunit() {
	g "rm -f /etc/containers/systemd/web-*.kube; cp /root/pods/web-*.yaml /etc/podunit/manifests/; systemctl enable containerd.service $podunit_units 2>/dev/null; systemctl daemon-reload"
}
as_podman() {
	g "rm -f /etc/podunit/manifests/web-*.yaml; mkdir -p /etc/containers/systemd; cp /root/quadlet/web-*.kube /etc/containers/systemd/; systemctl disable containerd.service $podunit_units 2>/dev/null; systemctl daemon-reload"
}
# One boot as side: its result in seconds.
boot_as() {
	"as_$1"
	g "rm -f /var/lib/bootbench/result"
	"$vm" reboot
	local deadline=$((SECONDS + 900))
	until g "test -s /var/lib/bootbench/result" 2>/dev/null; do
		((SECONDS < deadline)) || { log "$1: the pods did not all serve"; g "systemctl --failed --no-pager" || true; exit 1; }
		sleep 2
	done
	# Only this side's pods ran.
	if [ "$1" = podunit ]; then
		g "! systemctl is-active --quiet web-1.service" || { log "podman's unit ran at a podunit boot"; exit 1; }
	else
		g "! systemctl is-active --quiet pod-web-1.service && ! systemctl is-active --quiet containerd.service" ||
			{ log "podunit's pod or containerd ran at a podman boot"; exit 1; }
	fi
	g cat /var/lib/bootbench/result
}

log "warm-up boots (off the clock)"
boot_as podunit >/dev/null
boot_as podman >/dev/null
rows=()
for r in $(seq "$rounds"); do
	t_podunit=$(boot_as podunit)
	t_podman=$(boot_as podman)
	rows+=("$r $t_podunit $t_podman")
	log "round $r: manager start → $pods pods serving: podunit ${t_podunit}s, podman Quadlet ${t_podman}s"
done

echo
echo "$dist: $(echo "$facts" | paste -sd, -)"
printf '%-5s %10s %14s\n' round podunit podman-quadlet
for row in "${rows[@]}"; do
	read -r r a b <<<"$row"
	printf '%-5s %9ss %13ss\n' "$r" "$a" "$b"
done
printf '%s\n' "${rows[@]}" | awk -v n="$pods" '
	{ k++; a += $2; b += $3 }
	END {
		printf "\nmeans over %d boots each, manager start → %d pods serving (seconds):\n", k, n
		printf "  podunit          %6.2f  %.2fx podman\n", a / k, a / b
		printf "  podman Quadlet   %6.2f  1.00x\n", b / k
	}'
