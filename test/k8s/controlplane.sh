#!/bin/bash
# A Kubernetes control plane as podunit pods, as docs/controlplane.md tells
# it (issue #29): in a test bed (systemd, containerd, podunit installed),
# kubeadm — built from the Go module proxy, like the images of etcd,
# kube-apiserver, kube-controller-manager and kube-scheduler — writes the
# certificates, the kubeconfigs and the four static pods' manifests into
# /etc/kubernetes, exactly as `kubeadm init` does; podunit runs them from
# /etc/kubernetes/manifests. Then: /livez and /readyz answer, `kubectl get
# --raw /healthz` works and an object written stays; an edit of the
# apiserver's manifest replaces it through the readiness gate, and a
# broken one is rolled back while the old one serves; a reboot brings the
# control plane back with its data.
#   controlplane.sh INSTALL_TREE K8S_BIN_DIR IMAGES_DIR
# Prints one line a step; tears the test bed down whatever happens
# (KEEP_TESTBED=1: leaves it up, to look around).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../versions.env
. "$here/../versions.env"
tree=$1 bin=$2 images=$3
tb=$here/../testbed/testbed.sh
export PODUNIT_TESTBED_DIR=${PODUNIT_TESTBED_DIR:-/var/lib/podunit-testbed/controlplane}
# The node's address: one end of a veth pair (the kernel has veth for
# CNI; a dummy interface needs a module it may lack) in the test bed's network
# namespace, made at every boot before the pods start, as a machine's own
# address would be there.
addr=10.250.0.10

in_tb() { "$tb" exec "$@"; }
sh_tb() { "$tb" exec sh -c "$1"; }
# super-admin.conf: system:masters. admin.conf's group (kubeadm:cluster-admins)
# is bound by the phases of kubeadm init that need a kubelet.
kubectl() { in_tb /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/super-admin.conf "$@"; }
fail() { echo "controlplane: FAIL: $*" >&2; exit 1; }
step() { echo "=== $*" >&2; }
until_tb() { # SECONDS WHAT SHELL-COMMAND
	local deadline=$((SECONDS + $1))
	until sh_tb "$3" >/dev/null 2>&1; do
		((SECONDS < deadline)) || fail "timed out after $1 s: $2"
		sleep 2
	done
}

booted=
kube=$(mktemp -d)
chmod 0755 "$kube" # its mode becomes the test bed's / when the tree is installed
cleanup() {
	local rc=$?
	rm -rf "$kube"
	if [ -n "$booted" ]; then
		if [ $rc != 0 ]; then
			echo "--- the test bed's pods and journal:" >&2
			in_tb podunit get pods -A >&2 || true
			in_tb journalctl --no-pager -n 120 >&2 || true
		fi
		if [ -n "${KEEP_TESTBED:-}" ]; then
			echo "controlplane: KEEP_TESTBED: the test bed is left up; PODUNIT_TESTBED_DIR=$PODUNIT_TESTBED_DIR $tb down removes it" >&2
		else
			"$tb" down || true
		fi
	fi
	exit $rc
}
trap cleanup EXIT

step "test bed up, podunit installed"
"$tb" up
booted=1
"$tb" install "$tree"
mkdir -p "$kube/usr/local/bin" "$kube/etc/systemd/system/sysinit.target.wants" "$kube/var/lib/podunit/images" "$kube/etc/kubernetes"
cp "$bin/kubeadm" "$bin/kubectl" "$kube/usr/local/bin/"
cp "$images"/*.tar "$kube/var/lib/podunit/images/"
cat >"$kube/etc/systemd/system/node-address.service" <<UNIT
[Unit]
Description=The node's address
DefaultDependencies=no
Before=network.target podunit-sync.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'ip link show node0 >/dev/null 2>&1 || ip link add node0 type veth peer name node0-peer; ip addr replace $addr/32 dev node0 && ip link set node0-peer up && ip link set node0 up'

[Install]
WantedBy=sysinit.target
UNIT
# sysinit.target: every boot reaches it (the test bed boots a target of
# its own, not multi-user.target).
ln -s ../node-address.service "$kube/etc/systemd/system/sysinit.target.wants/node-address.service"
# What the steps ask of the test bed, as small commands in it.
cat >"$kube/usr/local/bin/cp-unit" <<'SH'
#!/bin/sh
# cp-unit NAME: the unit of kube-system's static pod NAME (podunit names
# it as the file does; the kubelet adds -NODE to its mirror pod's name).
systemctl list-units --all --plain --no-legend "pod-kube-system_$1.service" "pod-kube-system_$1-*.service" | awk '{ print $1; exit }'
SH
cat >"$kube/usr/local/bin/cp-generation" <<'SH'
#!/bin/sh
# cp-generation NAME: the generation (config hash) its unit runs.
systemctl show -P Description "$(cp-unit "$1")" | grep -o 'config [0-9a-f]*' | cut -d' ' -f2
SH
cat >"$kube/usr/local/bin/cp-status" <<'SH'
#!/bin/sh
# cp-status NAME: its STATUS as podunit get pods shows it.
podunit get pods -n kube-system | awk -v n="$1" '$1 == n || index($1, n "-") == 1 { print $3 }'
SH
cat >"$kube/usr/local/bin/cp-settled" <<'SH'
#!/bin/sh
# cp-settled NAME: its replacement is over (no podunit.io/UpToDate
# condition: the generation it runs passed the readiness gate, ready for
# its whole min-ready window).
! podunit get pods -n kube-system "$1" -o json | grep -q '"podunit.io/UpToDate"'
SH
cat >"$kube/usr/local/bin/cp-ready" <<'SH'
#!/bin/sh
# cp-ready: the four pods Running and ready (READY 1/1).
podunit get pods -n kube-system | awk 'NR > 1 && $2 == "1/1" && $3 == "Running" { n++ } END { exit n != 4 }'
SH
chmod 0755 "$kube"/usr/local/bin/cp-*
cat >"$kube/etc/kubernetes/kubeadm.yaml" <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $addr
  bindPort: 6443
nodeRegistration:
  name: podunit-node
  criSocket: unix:///run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $KUBERNETES_VERSION
imageRepository: localhost/podunit
etcd:
  local:
    imageTag: ${ETCD_VERSION#v}-0
networking:
  serviceSubnet: 10.96.0.0/12
YAML
"$tb" install "$kube"
in_tb systemctl start node-address.service
# podunit reads kubeadm's manifest directory too.
sh_tb "mkdir -p /etc/kubernetes/manifests && printf 'manifestDirs: [/etc/kubernetes/manifests]\n' >>/etc/podunit/config.yaml"
in_tb systemctl enable --now podunit.path podunit-sync.timer podunit-status.socket podunit-status.service podunit-images.path
in_tb podunit images import

step "kubeadm init phases: certs, kubeconfig, etcd, control-plane"
for phase in "certs all" "kubeconfig all" "etcd local" "control-plane all"; do
	# shellcheck disable=SC2086
	in_tb kubeadm init phase $phase --config /etc/kubernetes/kubeadm.yaml >&2
done
sh_tb "ls /etc/kubernetes/manifests" >&2

step "the control plane up under podunit"
start=$SECONDS
until_tb 300 "etcd, kube-apiserver, kube-controller-manager and kube-scheduler ready" cp-ready
echo "4 pods ready $((SECONDS - start)) s after kubeadm wrote their manifests" >&2
in_tb podunit get pods -n kube-system >&2
until_tb 120 "/readyz" "curl -fsk https://$addr:6443/readyz"
sh_tb "curl -sk 'https://$addr:6443/livez?verbose'" | tail -3 >&2
[ "$(kubectl get --raw /healthz)" = ok ] || fail "kubectl get --raw /healthz"
kubectl create namespace kept >&2
kubectl -n kept create configmap kept --from-literal=at="$(date -u +%FT%TZ)" >&2
for port in 10257 10259; do
	sh_tb "curl -fsk https://127.0.0.1:$port/healthz" | grep -qx ok || fail "healthz on $port"
done
echo "apiserver /readyz, kubectl, controller-manager and scheduler /healthz: ok" >&2

manifest=/etc/kubernetes/manifests/kube-apiserver.yaml

step "an edit of the apiserver's manifest, through the readiness gate"
before=$(in_tb cp-generation kube-apiserver)
[ -n "$before" ] || fail "no generation for kube-apiserver's unit"
sh_tb "sed -i 's|^    - kube-apiserver\$|    - kube-apiserver\n    - --v=1|' $manifest"
sh_tb "grep -q -- '- --v=1' $manifest" || fail "the edit did not take"
until_tb 600 "kube-apiserver on a new generation, ready" "[ \"\$(cp-generation kube-apiserver)\" != $before ] && curl -fsk https://$addr:6443/readyz"
good=$(in_tb cp-generation kube-apiserver)
# Ready is not yet the last ready generation: that is the one that stayed
# ready for its min-ready window (10 s); an edit before the window ends
# would roll back to the generation before it (docs/updates.md).
until_tb 120 "the replacement over: kube-apiserver passed its readiness gate" "cp-settled kube-apiserver"
until_tb 300 "all four ready again" cp-ready
[ "$(in_tb cp-status kube-apiserver)" = Running ] || fail "kube-apiserver is $(in_tb cp-status kube-apiserver) after a good edit"
kubectl -n kept get configmap kept >/dev/null || fail "the ConfigMap written before the edit is gone"
echo "replaced: generation $before → $good, ready, the data kept" >&2

step "a broken edit: rolled back, the old generation serving"
sh_tb "sed -i 's|^    - --v=1\$|    - --v=1\n    - --no-such-flag|' $manifest"
until_tb 600 "kube-apiserver shown RolledBack" '[ "$(cp-status kube-apiserver)" = RolledBack ]'
until_tb 300 "/readyz after the rollback" "curl -fsk https://$addr:6443/readyz"
[ "$(in_tb cp-generation kube-apiserver)" = "$good" ] || fail "kube-apiserver runs generation $(in_tb cp-generation kube-apiserver), not the last ready one, $good"
kubectl -n kept get configmap kept >/dev/null || fail "the ConfigMap is gone after the rollback"
echo "rolled back to $good; the API serves" >&2
# Mended: the good edit alone.
sh_tb "sed -i '/^    - --no-such-flag\$/d' $manifest"
until_tb 300 "kube-apiserver Running again" '[ "$(cp-status kube-apiserver)" = Running ]'

step "reboot: the control plane back, with its data"
"$tb" poweroff
"$tb" boot
until_tb 600 "all four ready after the boot" cp-ready
until_tb 300 "/readyz after the boot" "curl -fsk https://$addr:6443/readyz"
[ "$(kubectl get --raw /healthz)" = ok ] || fail "kubectl get --raw /healthz after the boot"
kubectl -n kept get configmap kept -o jsonpath='{.data.at}' >&2 || fail "the ConfigMap is gone after the boot"
echo >&2
echo "controlplane: PASS: kubeadm's control plane ran under podunit: ready, replaced through the gate, rolled back, back after a reboot" >&2
