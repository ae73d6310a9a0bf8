#!/bin/bash
# The status API under load (make bench-status): PODS pods run in a fresh
# test bed, then wrk (CLIENTS connections, DURATION) polls GET /pods on the
# readOnlyPort. Two floors are measured in the same run: GET /healthz/ping,
# the same server answering without looking at a single pod, and STATIC, a
# bare net/http server answering every request with the bytes of one /pods
# answer from memory: what an answer of that size costs on this machine.
# It prints the latency percentiles of all three, and tears down only the
# test bed it booted.
#   status.sh INSTALL_TREE STATIC
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tb=$here/../testbed/testbed.sh
tree=$1 static=$2
: "${PODUNIT_TESTBED_DIR:?set it: the test bed this run boots}"
PODS=${PODS:-100} CLIENTS=${CLIENTS:-50} DURATION=${DURATION:-30s} THREADS=${THREADS:-2}
# WRK_CPUS pins wrk (taskset -c), e.g. to one core of two, so that the
# client's own CPU use weighs less on the latencies.
WRK_CPUS=${WRK_CPUS:-}

booted=
cleanup() { [ -z "$booted" ] || "$tb" down; }
trap cleanup EXIT
"$tb" up
booted=1
"$tb" install "$tree"
"$tb" exec sh -c 'echo "readOnlyPort: 10255" >>/etc/podunit/config.yaml'
"$tb" exec systemctl enable --now podunit.path podunit-sync.timer podunit-status.socket podunit-status.service >/dev/null 2>&1

echo "status-bench: starting $PODS pods" >&2
"$tb" exec sh -c "
	for i in \$(seq 1 $PODS); do
		cat >/etc/podunit/manifests/load-\$i.yaml <<POD
apiVersion: v1
kind: Pod
metadata: {name: load-\$i, labels: {app: load}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    command: [sh, -c, 'trap \"exit 0\" TERM; sleep 86400 & wait']
    ports: [{containerPort: 80}]
POD
	done"
start=$SECONDS
until [ "$("$tb" exec /usr/local/bin/podunit get pods -o wide 2>/dev/null | grep -c ' Running ')" -ge "$PODS" ]; do
	if ((SECONDS - start > 60 + 3 * PODS)); then
		"$tb" exec /usr/local/bin/podunit get pods >&2 || true
		echo "status-bench: the pods did not all run" >&2
		exit 1
	fi
	sleep 2
done
echo "status-bench: $PODS pods running after $((SECONDS - start)) s" >&2
"$tb" exec sh -c 'curl -s http://127.0.0.1:10255/pods >/run/podunit-testbed/pods.json'
bytes=$(wc -c <"$PODUNIT_TESTBED_DIR/pods.json")
mkdir -p "$PODUNIT_TESTBED_DIR/bin"
cp "$static" "$PODUNIT_TESTBED_DIR/bin/static"
"$tb" exec sh -c '/run/podunit-testbed/bin/static 127.0.0.1:10256 /run/podunit-testbed/pods.json >/dev/null 2>&1 &'
sleep 0.5

measure() { # path: wrk's p50, p90, p99 and requests/s
	"$tb" exec ${WRK_CPUS:+taskset -c "$WRK_CPUS"} wrk -t"$THREADS" -c"$CLIENTS" -d"$DURATION" --latency "http://127.0.0.1:$1" |
		awk '/^ +50%/ {p50=$2} /^ +90%/ {p90=$2} /^ +99%/ {p99=$2} /^Requests\/sec/ {rps=$2}
			/Non-2xx/ {bad=$NF} END {printf "%s %s %s %s %s\n", p50, p90, p99, rps, bad+0}'
}
read -r f50 f90 f99 frps fbad < <(measure 10255/healthz/ping)
read -r s50 s90 s99 srps sbad < <(measure 10256/pods)
read -r p50 p90 p99 prps pbad < <(measure 10255/pods)
cat <<REPORT
status API under load: $PODS pods, $CLIENTS connections, $THREADS wrk threads${WRK_CPUS:+ on CPU $WRK_CPUS}, $DURATION each
  endpoint        p50        p90        p99        req/s      non-2xx
  /healthz/ping   $f50  $f90  $f99  $frps  $fbad
  static copy     $s50  $s90  $s99  $srps  $sbad   (floor: the same bytes from memory)
  /pods           $p50  $p90  $p99  $prps  $pbad   ($bytes bytes an answer)
REPORT
[ "$pbad" = 0 ] && [ "$fbad" = 0 ] && [ "$sbad" = 0 ]
