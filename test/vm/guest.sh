# What a user does to the guest's containerd once `podunit doctor` has
# named it, with the test's local images (no registry is reachable here).
# Sourced by story.sh and bench.sh, which define g (a command line for the
# guest) and vm (vm.sh).

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
# containerd's k8s.io namespace, as localhost/podunit/NAME:TAG.
import_images() {
	local dir=$1 i
	shift
	for i in "$@"; do
		"$vm" copy "$dir/${i%%:*}.tar" /root/images
		g ctr -n k8s.io images import --index-name "localhost/podunit/$i" "/root/images/${i%%:*}.tar" >/dev/null
	done
}
