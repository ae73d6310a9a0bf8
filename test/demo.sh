#!/bin/bash
# make demo: boot (or reuse) the demo test bed, install podunit in it, drop a
# manifest into /etc/podunit/manifests and show the pod answering.
#   demo.sh INSTALL_TREE MANIFEST
# With HOST=1 on a machine where systemd is PID 1, installs into the host's
# systemd instead (make install PREFIX=/usr/local, then the same steps).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tree=$1 manifest=$2
name=$(awk '/^metadata:/ {m=1} m && $1 == "name:" {print $2; exit}' "$manifest")
unit=pod-$name.service

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }

if [ "${HOST:-}" = 1 ]; then
	[ "$(cat /proc/1/comm)" = systemd ] || { echo "demo: HOST=1 needs systemd as PID 1 (here PID 1 is $(cat /proc/1/comm))" >&2; exit 1; }
	run_in() { "$@"; }
	tar -C "$tree" -cf - . | tar -C / -xf - --no-same-owner --keep-directory-symlink
	systemctl daemon-reload
	systemd-sysusers /usr/local/lib/sysusers.d/podunit.conf
	systemd-tmpfiles --create /usr/local/lib/tmpfiles.d/podunit.conf
	where="the host"
	enter=""
else
	tb=$here/testbed/testbed.sh
	run_in() { "$tb" exec "$@"; }
	if ! "$tb" pid >/dev/null 2>&1; then
		"$tb" up
	fi
	"$tb" install "$tree"
	where="the test bed"
	enter="nsenter -t $("$tb" pid) -m -p -n -u -i"
fi

bold "1. podunit is installed in $where; its path unit watches /etc/podunit/manifests"
run_in systemctl enable --now podunit.path podunit-sync.timer podunit-fetch.service podunit-status.socket podunit-status.service 2>&1 | sed 's/^/   /'
run_in systemctl --no-pager list-units 'podunit*' | sed 's/^/   /'

bold "2. cp $manifest /etc/podunit/manifests/"
run_in sh -c "cat > /etc/podunit/manifests/.$name.tmp && mv /etc/podunit/manifests/.$name.tmp /etc/podunit/manifests/$name.yaml" <"$manifest"

printf '   waiting for %s to be ready ' "$unit"
for i in $(seq 120); do
	state=$(run_in systemctl is-active "$unit" 2>/dev/null || true)
	[ "$state" = active ] && break
	printf '.'
	sleep 0.5
done
echo " $state"
if [ "$state" != active ]; then
	run_in systemctl --no-pager status "$unit" || true
	run_in journalctl --no-pager -u podunit-sync -u "$unit" -n 30 || true
	exit 1
fi

bold "3. systemctl status $unit"
run_in systemctl --no-pager status "$unit" | sed 's/^/   /'

ip=$(run_in sh -c "jq -r .status.podIP /run/podunit/pods/default_$name.json")
port=$(awk '$1 == "hostPort:" {print $2; exit}' "$manifest")
bold "4. The pod answers on its IP ($ip) and on the host port ($port)"
echo "   \$ curl http://$ip/"
run_in curl -s -m 5 "http://$ip/" | sed 's/^/   /'
if [ -n "$port" ]; then
	echo "   \$ curl http://127.0.0.1:$port/"
	run_in curl -s -m 5 "http://127.0.0.1:$port/" | sed 's/^/   /'
fi

# The web console: the Cockpit page, when the tree has it (make demo
# installs it) and Debian's cockpit-ws is here. cockpit-ws runs in the test
# bed (its logins and bridges are the test bed's); socat forwards
# 127.0.0.1:CONSOLE_PORT of the host into the test bed's network namespace.
console=
if [ -z "${HOST:-}" ] && [ -d "$tree/usr/local/share/cockpit/podunit" ] && [ -x /usr/lib/cockpit/cockpit-ws ]; then
	port=${CONSOLE_PORT:-9090}
	forward_pid=$PODUNIT_TESTBED_DIR/console-forward.pid
	run_in sh -c "
		id podunit-admin >/dev/null 2>&1 || useradd -m -d /run/podunit-admin -G sudo podunit-admin
		echo podunit-admin:podunit-demo | chpasswd
		id podunit-viewer >/dev/null 2>&1 || useradd -m -d /run/podunit-viewer -G podunit,systemd-journal podunit-viewer
		echo podunit-viewer:podunit-demo | chpasswd
		systemctl is-active --quiet podunit-console.service ||
			systemd-run --quiet --unit=podunit-console /usr/lib/cockpit/cockpit-ws --no-tls --address 127.0.0.1 --port 9090"
	if ! { [ -f "$forward_pid" ] && kill -0 "$(cat "$forward_pid")" 2>/dev/null; }; then
		setsid socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
			"EXEC:nsenter -t $("$tb" pid) -n socat STDIO TCP\:127.0.0.1\:9090" </dev/null >/dev/null 2>&1 &
		echo $! >"$forward_pid"
	fi
	for i in $(seq 50); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" || true)" = 200 ] && break
		sleep 0.2
	done
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/podunit" || true)" = 200 ] ||
		{ echo "demo: the web console does not answer on 127.0.0.1:$port" >&2; exit 1; }
	console="http://127.0.0.1:$port/podunit"
	bold "5. The web console (Cockpit) shows the pods: $console"
	cat <<EOT
   Log in as podunit-admin, password podunit-demo, and click "Limited
   access" to turn on administrative access (sudo, the same password:
   restart, stop, start, remove), or as podunit-viewer, password
   podunit-demo (the podunit group only: read-only). It listens on the host's 127.0.0.1:$port;
   from another machine: ssh -L $port:127.0.0.1:$port root@this-machine.
EOT
fi

bold "$([ -n "$console" ] && echo 6 || echo 5). Look around"
if [ -n "$enter" ]; then
	cat <<EOT
   Enter the test bed (its own systemd, journald, containerd and network):
     $enter bash
   Then try:
     systemctl status $unit 'podunit-$(systemd-escape "$name").slice'
     journalctl -u $unit -u podunit-sync
     podunit render /etc/podunit/manifests/$name.yaml
     vi /etc/podunit/manifests/$name.yaml     # an edit replaces the pod
     rm /etc/podunit/manifests/$name.yaml     # and this stops it
   Stop and remove the test bed with: make demo-stop
EOT
else
	echo "   systemctl status $unit; journalctl -u $unit; rm /etc/podunit/manifests/$name.yaml stops it."
fi
