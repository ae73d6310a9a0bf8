// Package criclient is a small, typed client of the CRI runtime and image
// services (containerd, CRI-O) over gRPC on a unix socket.
//
// Its methods have the signatures of the kubelet's CRI interfaces in
// k8s.io/cri-api/pkg/apis, so code written against a subset of those
// interfaces runs unchanged on this client or on cri-api's fakes in tests.
// Every call has a deadline; a call made while the runtime restarts waits for
// the connection to come back, within that deadline.
package criclient

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultEndpoint is containerd's CRI socket.
const DefaultEndpoint = "unix:///run/containerd/containerd.sock"

// DefaultTimeout bounds each call but image pulls.
const DefaultTimeout = 2 * time.Minute

// Client talks CRI to one runtime.
type Client struct {
	conn    *grpc.ClientConn
	runtime runtimeapi.RuntimeServiceClient
	image   runtimeapi.ImageServiceClient
	// Timeout bounds each call (but PullImage, bounded by its context).
	Timeout time.Duration
	// failFast: calls fail at once (Unavailable) while the runtime cannot
	// be reached, instead of waiting for it.
	failFast atomic.Bool
}

// SetFailFast makes calls fail at once, with Unavailable, while the runtime
// cannot be reached (on), or wait for it within Timeout, the default (off).
// A caller with a loop of its own to keep (podshim's watchdog and logs)
// asks again later rather than wait in a call.
func (c *Client) SetFailFast(on bool) { c.failFast.Store(on) }

var failFastOpts = []grpc.CallOption{grpc.WaitForReady(false)}

func (c *Client) callOpts() []grpc.CallOption {
	if c.failFast.Load() {
		return failFastOpts
	}
	return nil
}

// ErrEndpoint is returned for an endpoint that is not a unix socket URL.
var ErrEndpoint = errors.New("CRI endpoint must be unix:///path/to/socket")

// New returns a client for endpoint (unix:///path). It does not connect: the
// first call does, and Version is the usual first call.
func New(endpoint string) (*Client, error) {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok || !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("%q: %w", endpoint, ErrEndpoint)
	}
	conn, err := grpc.NewClient("unix://"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// A local socket: trying it again is cheap, so a runtime back from
		// a restart is found within a second or two, not after gRPC's
		// default back-off, which grows to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		// CRI messages go through this package's codec, registered as
		// gRPC's "proto" codec (wire.go), not forced per call.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.WaitForReady(true)),
	)
	if err != nil {
		return nil, fmt.Errorf("CRI endpoint %q: %w", endpoint, err)
	}
	return &Client{
		conn:    conn,
		runtime: runtimeapi.NewRuntimeServiceClient(conn),
		image:   runtimeapi.NewImageServiceClient(conn),
		Timeout: DefaultTimeout,
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Reachable reports whether the runtime could be reached at the last try:
// false while its socket refuses connections (it is stopped or restarting)
// and gRPC tries it again. A call made then waits for it (WaitForReady) and
// fails with DeadlineExceeded if it does not come back in time; this tells
// such a failure from a runtime that answered slowly.
func (c *Client) Reachable() bool {
	switch c.conn.GetState() {
	case connectivity.TransientFailure, connectivity.Connecting, connectivity.Shutdown:
		return false
	}
	return true
}

func (c *Client) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.Timeout)
}

// Version returns the runtime's name and version; it is the connection check.
func (c *Client) Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	return c.runtime.Version(ctx, &runtimeapi.VersionRequest{Version: apiVersion}, c.callOpts()...)
}

// RunPodSandbox creates and starts a pod sandbox and returns its ID.
func (c *Client) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	resp, err := c.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config, RuntimeHandler: runtimeHandler}, c.callOpts()...)
	if err != nil {
		return "", err
	}
	return resp.PodSandboxId, nil
}

// StopPodSandbox stops a sandbox's containers and tears down its network.
func (c *Client) StopPodSandbox(ctx context.Context, podSandboxID string) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, err := c.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podSandboxID}, c.callOpts()...)
	return err
}

// RemovePodSandbox removes a stopped sandbox and its containers.
func (c *Client) RemovePodSandbox(ctx context.Context, podSandboxID string) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, err := c.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podSandboxID}, c.callOpts()...)
	return err
}

// PodSandboxStatus returns a sandbox's state and network status.
func (c *Client) PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	return c.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podSandboxID, Verbose: verbose}, c.callOpts()...)
}

// ListPodSandbox lists the sandboxes that match filter.
func (c *Client) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	resp, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: filter}, c.callOpts()...)
	if err != nil {
		return nil, err
	}
	return resp.Items, nil
}

// CreateContainer creates a container in a sandbox and returns its ID.
func (c *Client) CreateContainer(ctx context.Context, podSandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	resp, err := c.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: podSandboxID, Config: config, SandboxConfig: sandboxConfig,
	}, c.callOpts()...)
	if err != nil {
		return "", err
	}
	return resp.ContainerId, nil
}

// StartContainer starts a created container.
func (c *Client) StartContainer(ctx context.Context, containerID string) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, err := c.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: containerID}, c.callOpts()...)
	return err
}

// StopContainer sends the stop signal, then SIGKILL after timeout seconds.
func (c *Client) StopContainer(ctx context.Context, containerID string, timeout int64) error {
	// The call lasts as long as the grace period, plus the usual bound.
	ctx, cancel := context.WithTimeout(ctx, c.Timeout+time.Duration(timeout)*time.Second)
	defer cancel()
	_, err := c.runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: containerID, Timeout: timeout}, c.callOpts()...)
	return err
}

// RemoveContainer removes a container.
func (c *Client) RemoveContainer(ctx context.Context, containerID string) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, err := c.runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: containerID}, c.callOpts()...)
	return err
}

// ListContainers lists the containers that match filter.
func (c *Client) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	resp, err := c.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: filter}, c.callOpts()...)
	if err != nil {
		return nil, err
	}
	return resp.Containers, nil
}

// ContainerStatus returns a container's state, exit code and times.
func (c *Client) ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	return c.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: containerID, Verbose: verbose}, c.callOpts()...)
}

// ImageStatus returns the image's status; its Image is nil when the image is
// not present.
func (c *Client) ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	return c.image.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: image, Verbose: verbose}, c.callOpts()...)
}

// RemoveImage removes an image. Given one of several names of an image,
// CRI-O removes that name only; containerd removes the image, with all
// its names.
func (c *Client) RemoveImage(ctx context.Context, image *runtimeapi.ImageSpec) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, err := c.image.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: image}, c.callOpts()...)
	return err
}

// PullImage pulls an image and returns its reference. A pull has no deadline
// of its own: the caller's context bounds it.
func (c *Client) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	resp, err := c.image.PullImage(ctx, &runtimeapi.PullImageRequest{Image: image, Auth: auth, SandboxConfig: podSandboxConfig}, c.callOpts()...)
	if err != nil {
		return "", err
	}
	return resp.ImageRef, nil
}

// ReopenContainerLog asks the runtime to reopen a container's log file, after
// it was rotated.
func (c *Client) ReopenContainerLog(ctx context.Context, containerID string) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, err := c.runtime.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: containerID}, c.callOpts()...)
	return err
}

// ExitError is ExecSync's error for a command that ran and exited non-zero.
type ExitError struct {
	Code   int32
	Stderr []byte
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("command exited with code %d: %s", e.Code, strings.TrimSpace(string(e.Stderr)))
}

// ExecSync runs cmd in a container and waits for it, at most timeout. A
// command that exits non-zero returns an *ExitError.
func (c *Client) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout+timeout)
	defer cancel()
	resp, err := c.runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{
		ContainerId: containerID, Cmd: cmd, Timeout: int64(timeout.Seconds()),
	}, c.callOpts()...)
	if err != nil {
		return nil, nil, err
	}
	if resp.ExitCode != 0 {
		return resp.Stdout, resp.Stderr, &ExitError{Code: resp.ExitCode, Stderr: resp.Stderr}
	}
	return resp.Stdout, resp.Stderr, nil
}

// Settings are what a runtime tells of how it runs pods; empty fields
// where it does not tell.
type Settings struct {
	// CgroupDriver is "systemd" or "cgroupfs".
	CgroupDriver string
	// CNIConfDir and CNIPluginDirs are where it reads CNI network
	// configurations and plugins.
	CNIConfDir    string
	CNIPluginDirs []string
	// SandboxImage is the image every pod's sandbox runs (containerd's
	// sandbox_image).
	SandboxImage string
	// OCIRuntime is the program containerd's default runtime runs
	// containers with: its runc-shim's BinaryName ("runc" when unset), by
	// its base name; "" when not told (another runtime type, CRI-O).
	OCIRuntime string
}

// Settings asks the runtime with one verbose Status call (containerd's
// "config" and "cniconfig"), and the cgroup driver with RuntimeConfig first
// where the runtime has it (containerd 2, CRI-O 1.28).
func (c *Client) Settings(ctx context.Context) (Settings, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	st, err := c.runtime.Status(ctx, &runtimeapi.StatusRequest{Verbose: true}, c.callOpts()...)
	if err != nil {
		return Settings{}, err
	}
	info := st.GetInfo()
	var out Settings
	out.CNIConfDir, out.CNIPluginDirs = cniDirs(info["cniconfig"])
	out.SandboxImage = containerdSandboxImage(info["config"])
	out.OCIRuntime = containerdOCIRuntime(info["config"])
	rc, err := c.runtime.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{}, c.callOpts()...)
	switch {
	case err == nil && rc.GetLinux() != nil:
		out.CgroupDriver = "systemd"
		if rc.GetLinux().GetCgroupDriver() == runtimeapi.CgroupDriver_CGROUPFS {
			out.CgroupDriver = "cgroupfs"
		}
	case err == nil || status.Code(err) == codes.Unimplemented:
		out.CgroupDriver = containerdCgroupDriver(info["config"])
	default:
		return Settings{}, err
	}
	return out, nil
}

// containerdSandboxImage reads the sandbox image from containerd's CRI
// configuration, as its Status shows it: sandboxImage (1.x), or the pinned
// sandbox image (2.x).
func containerdSandboxImage(config string) string {
	var cfg struct {
		SandboxImage string `json:"sandboxImage"`
		PinnedImages struct {
			Sandbox string `json:"sandbox"`
		} `json:"pinnedImages"`
	}
	if json.Unmarshal([]byte(config), &cfg) != nil {
		return ""
	}
	return cmp.Or(cfg.SandboxImage, cfg.PinnedImages.Sandbox)
}

// containerdCgroupDriver reads the default runc runtime's SystemdCgroup
// option from containerd's CRI configuration, as its Status shows it.
func containerdCgroupDriver(config string) string {
	var cfg struct {
		Containerd struct {
			DefaultRuntimeName string `json:"defaultRuntimeName"`
			Runtimes           map[string]struct {
				Options map[string]any `json:"options"`
			} `json:"runtimes"`
		} `json:"containerd"`
	}
	if json.Unmarshal([]byte(config), &cfg) != nil {
		return ""
	}
	name := cfg.Containerd.DefaultRuntimeName
	if name == "" {
		name = "runc"
	}
	rt, ok := cfg.Containerd.Runtimes[name]
	if !ok {
		return ""
	}
	if b, _ := rt.Options["SystemdCgroup"].(bool); b {
		return "systemd"
	}
	return "cgroupfs"
}

// containerdOCIRuntime reads the program of containerd's default runtime
// from its CRI configuration, as its Status shows it: the runc shim's
// BinaryName option, runc when unset.
func containerdOCIRuntime(config string) string {
	var cfg struct {
		Containerd struct {
			DefaultRuntimeName string `json:"defaultRuntimeName"`
			Runtimes           map[string]struct {
				Type    string         `json:"runtimeType"`
				Options map[string]any `json:"options"`
			} `json:"runtimes"`
		} `json:"containerd"`
	}
	if json.Unmarshal([]byte(config), &cfg) != nil {
		return ""
	}
	rt, ok := cfg.Containerd.Runtimes[cmp.Or(cfg.Containerd.DefaultRuntimeName, "runc")]
	if !ok || rt.Type != "io.containerd.runc.v2" {
		return ""
	}
	if bin, _ := rt.Options["BinaryName"].(string); bin != "" {
		return path.Base(bin)
	}
	return "runc"
}

// cniDirs reads containerd's "cniconfig" status.
func cniDirs(info string) (string, []string) {
	var cfg struct {
		PluginDirs    []string `json:"PluginDirs"`
		PluginConfDir string   `json:"PluginConfDir"`
	}
	if json.Unmarshal([]byte(info), &cfg) != nil {
		return "", nil
	}
	return cfg.PluginConfDir, cfg.PluginDirs
}

// Exec asks the runtime to prepare a streaming exec and returns the URL of
// its streaming server to connect to (the kubelet's remotecommand
// protocol, which podunit speaks over a WebSocket).
func (c *Client) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (string, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	resp, err := c.runtime.Exec(ctx, req, c.callOpts()...)
	if err != nil {
		return "", err
	}
	return resp.Url, nil
}
