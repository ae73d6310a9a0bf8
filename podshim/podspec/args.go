package podspec

import (
	"flag"
	"path/filepath"
	"strconv"
)

// DefaultJobDir holds the records of the Job pods that finished, so that a
// completed (or failed) Job is not run again after a reboot, when its unit
// is gone: JobRecordPath names each.
const DefaultJobDir = "/var/lib/podunit/jobs"

// JobRecordPath is the record of the Job pod namespace/name of config hash
// in dir: it holds Succeeded or Failed.
func JobRecordPath(dir, namespace, name, hash string) string {
	return filepath.Join(dir, namespace+"_"+name+"-"+hash)
}

// Args are podshim's command line: what `podunit sync` puts in a pod
// unit's ExecStart (Argv) and what podshim parses (Flags), named in one
// place. A zero field is left out of the command line: podshim's default
// holds.
type Args struct {
	Spec         string // the pod's spec file (required)
	CRIEndpoint  string // the runtime's CRI socket
	CgroupParent string // the pod's slice (systemd driver) or its cgroup path (cgroupfs)

	// From config.yaml: containerLogMaxSize, containerLogMaxFiles,
	// resolvConf.
	LogMaxSize  int64
	LogMaxFiles int
	ResolvConf  string
	// ClusterDNS and ClusterDomain are the pods' resolver (cluster DNS,
	// podunit-dns.service) and its domain: dnsPolicy ClusterFirst names
	// them. Empty: no cluster DNS, ClusterFirst falls back to Default.
	ClusterDNS    string
	ClusterDomain string

	// Where podshim keeps things; podunit never sets them.
	StateDir, LogRoot, PodRoot, VolumeRoot string
	// ServiceTable is the node's Service table, which the Service
	// environment variables come from; podunit never sets it either.
	ServiceTable string

	// FinishedRecord, for a Job's pod, is the file podshim writes the
	// pod's end into ("Succeeded" or "Failed", JobRecordPath) as soon as
	// it finishes, so that the Job is not run again after a reboot even
	// when no sync ran in between.
	FinishedRecord string

	// RestartBackoff: the unit's manager has no RestartSteps= (systemd
	// before 254), so podshim, restarted after a failure, waits out the
	// rest of DefaultRestartBackoff itself before it goes on.
	RestartBackoff bool

	// Pins, after a rollback, holds the generation to the images it ran
	// when it was last ready (Pins); "": the images the spec names.
	Pins string
	// AuthFile is the node's registry credentials (containers-auth.json
	// format), tried after the pod's image pull Secrets; podshim's default
	// is registry.DefaultAuthFile.
	AuthFile string
	// CredentialProviders is the kubelet credential provider plugins'
	// configuration as sync wrote it (registry.DefaultProvidersPath); "":
	// none.
	CredentialProviders string
	// PullOfflineFail: a container whose image's policy is Always waits
	// for a registry that cannot be reached, as the kubelet does, instead
	// of running the local copy (imagePullOffline: fail).
	PullOfflineFail bool
}

// Argv is program with the arguments that are set, in a fixed order.
func (a Args) Argv(program string) []string {
	argv := []string{program}
	add := func(flag, value string) {
		if value != "" && value != "0" {
			argv = append(argv, "--"+flag, value)
		}
	}
	add("spec", a.Spec)
	add("cri-endpoint", a.CRIEndpoint)
	add("cgroup-parent", a.CgroupParent)
	add("log-max-size", strconv.FormatInt(a.LogMaxSize, 10))
	add("log-max-files", strconv.Itoa(a.LogMaxFiles))
	add("resolv-conf", a.ResolvConf)
	add("cluster-dns", a.ClusterDNS)
	add("cluster-domain", a.ClusterDomain)
	add("state-dir", a.StateDir)
	add("log-root", a.LogRoot)
	add("pod-root", a.PodRoot)
	add("volume-root", a.VolumeRoot)
	add("service-table", a.ServiceTable)
	add("finished-record", a.FinishedRecord)
	add("pins", a.Pins)
	add("auth-file", a.AuthFile)
	add("credential-providers", a.CredentialProviders)
	if a.PullOfflineFail {
		argv = append(argv, "--image-pull-offline-fail")
	}
	if a.RestartBackoff {
		argv = append(argv, "--restart-backoff")
	}
	return argv
}

// Flags is a flag set that parses what Argv writes into a, whose values
// are the defaults.
func (a *Args) Flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&a.Spec, "spec", a.Spec, "pod spec file written by `podunit sync` (required)")
	fs.StringVar(&a.CRIEndpoint, "cri-endpoint", a.CRIEndpoint, "CRI runtime endpoint")
	fs.StringVar(&a.CgroupParent, "cgroup-parent", a.CgroupParent, "CgroupParent of the pod sandbox: the pod's slice (systemd driver) or cgroup path (cgroupfs)")
	fs.Int64Var(&a.LogMaxSize, "log-max-size", a.LogMaxSize, "rotate a container's log file past this many bytes")
	fs.IntVar(&a.LogMaxFiles, "log-max-files", a.LogMaxFiles, "log files kept per container, the current one included")
	fs.StringVar(&a.ResolvConf, "resolv-conf", a.ResolvConf, "the host's resolver configuration, which pods' DNS starts from")
	fs.StringVar(&a.ClusterDNS, "cluster-dns", a.ClusterDNS, "the cluster DNS address pods with dnsPolicy ClusterFirst use")
	fs.StringVar(&a.ClusterDomain, "cluster-domain", a.ClusterDomain, "the cluster DNS domain")
	fs.StringVar(&a.StateDir, "state-dir", a.StateDir, "where the pod's state file is written")
	fs.StringVar(&a.LogRoot, "log-root", a.LogRoot, "container log root, in the kubelet's layout")
	fs.StringVar(&a.PodRoot, "pod-root", a.PodRoot, "where each pod's directory (its /etc/hosts and volumes) is made")
	fs.StringVar(&a.VolumeRoot, "volume-root", a.VolumeRoot, "where PersistentVolumeClaims' directories are made")
	fs.StringVar(&a.ServiceTable, "service-table", a.ServiceTable, "the node's Service table (written by podunit sync), which the Service environment variables come from; empty: none")
	fs.StringVar(&a.FinishedRecord, "finished-record", a.FinishedRecord, "a Job's pod: the file its end (Succeeded or Failed) is written into when it finishes")
	fs.StringVar(&a.Pins, "pins", a.Pins, "after a rollback: the image IDs the pod's generation ran when it was last ready")
	fs.StringVar(&a.AuthFile, "auth-file", a.AuthFile, "the node's registry credentials (containers-auth.json), after the pod's image pull Secrets")
	fs.StringVar(&a.CredentialProviders, "credential-providers", a.CredentialProviders, "the kubelet credential provider plugins' configuration, as podunit sync wrote it")
	fs.BoolVar(&a.PullOfflineFail, "image-pull-offline-fail", a.PullOfflineFail, "wait for a registry that cannot be reached, as the kubelet does, instead of running the local copy of an Always image")
	fs.BoolVar(&a.RestartBackoff, "restart-backoff", a.RestartBackoff, "after an automatic restart, wait out the rest of the restart back-off that systemd before 254 cannot pace (RestartSteps=)")
	return fs
}
