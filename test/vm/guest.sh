# What a user does to the guest's runtime (containerd, or CRI-O with
# runtime=crio) once `podunit doctor` has named it, with the test's local
# images (no registry is reachable here). Sourced by story.sh and bench.sh,
# which define g (a command line for the guest) and vm (vm.sh).
runtime=${runtime:-containerd}

# configure_crio installs skopeo (which doctor's fix names, to copy images
# into CRI-O's store) and gives CRI-O the local pause image (doctor's fix, a
# drop-in in /etc/crio/crio.conf.d; "" runs its own entrypoint: it has no
# /pause), and restarts it.
configure_crio() {
	g "DEBIAN_FRONTEND=noninteractive apt-get install -y -q skopeo >/dev/null"
	g "printf '[crio.image]\npause_image = \"localhost/podunit/pause:1\"\npause_command = \"\"\n' >/etc/crio/crio.conf.d/90-podunit-pause.conf && systemctl restart crio"
}

# configure_runtime: configure_containerd or configure_crio.
configure_runtime() {
	if [ "$runtime" = crio ]; then configure_crio; else configure_containerd; fi
}

# runtime_unit is the runtime's systemd unit.
runtime_unit() { if [ "$runtime" = crio ]; then echo crio.service; else echo containerd.service; fi; }

# runtime_version prints the runtime's version (1.34.0, v1.6.20, 2.1.9).
runtime_version() {
	if [ "$runtime" = crio ]; then
		g crio --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1
	else
		g containerd --version | awk '{print $3}'
	fi
}

# configure_containerd writes the fixes of docs/packaging.md in the syntax
# of the guest's containerd (config version 3 for containerd 2, version 2
# before), with the local pause image as the sandbox image, and restarts it.
configure_containerd() {
	if g containerd --version | grep -q ' v\?2\.'; then
		g "cat >/etc/containerd/config.toml" <<'TOML'
version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = true
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = "/etc/cni/net.d"
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "localhost/podunit/pause:1"
TOML
	else
		g "cat >/etc/containerd/config.toml" <<'TOML'
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/podunit/pause:1"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "/etc/cni/net.d"
TOML
	fi
	g systemctl restart containerd
}

# import_images DIR NAME:TAG…: the local images DIR/NAME.tar into
# containerd's k8s.io namespace, as localhost/podunit/NAME:TAG; on CRI-O,
# as an archive of that name in podunit's images directory, which
# podunit-images.service imports again at each boot: CRI-O removes every
# image when it starts after a power cut (no clean_shutdown_file), and
# this machine has no registry to pull them from again.
import_images() {
	local dir=$1 i
	shift
	for i in "$@"; do
		"$vm" copy "$dir/${i%%:*}.tar" /root/images
		if [ "$runtime" = crio ]; then
			g mkdir -p /var/lib/podunit/images
			g skopeo copy -q "oci-archive:/root/images/${i%%:*}.tar" "oci-archive:/var/lib/podunit/images/${i%%:*}.tar:localhost/podunit/$i" >/dev/null ||
				{ echo "skopeo copy of $i into an archive failed"; return 1; }
		else
			g ctr -n k8s.io images import --index-name "localhost/podunit/$i" "/root/images/${i%%:*}.tar" >/dev/null ||
				{ echo "ctr images import of $i failed"; return 1; }
		fi
	done
	if [ "$runtime" = crio ]; then
		g podunit images import || { echo "podunit images import failed"; return 1; }
	fi
}
