package criclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runtimeServer answers a few CRI calls, as a runtime would.
type runtimeServer struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	got *runtimeapi.RunPodSandboxRequest
}

func (s *runtimeServer) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: "fake", RuntimeVersion: "1.0", RuntimeApiVersion: "v1"}, nil
}

func (s *runtimeServer) RunPodSandbox(_ context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	s.got = req
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: "sb-1"}, nil
}

func (s *runtimeServer) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	if req.Filter.GetLabelSelector()["app"] != "web" {
		return &runtimeapi.ListPodSandboxResponse{}, nil
	}
	return &runtimeapi.ListPodSandboxResponse{Items: []*runtimeapi.PodSandbox{{Id: "sb-1"}}}, nil
}

func (s *runtimeServer) StopPodSandbox(context.Context, *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	return nil, status.Error(codes.NotFound, "no such sandbox")
}

// serve starts a CRI server on a real unix socket.
func serve(t *testing.T, path string, rs *runtimeServer) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, rs)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
}

func TestClientOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cri.sock")
	rs := &runtimeServer{}
	serve(t, sock, rs)
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	v, err := c.Version(ctx, "")
	if err != nil || v.RuntimeName != "fake" {
		t.Fatalf("Version: %v %v", v, err)
	}
	id, err := c.RunPodSandbox(ctx, &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web"}}, "runc")
	if err != nil || id != "sb-1" || rs.got.RuntimeHandler != "runc" || rs.got.Config.Metadata.Name != "web" {
		t.Errorf("RunPodSandbox: %q %v, server got %v", id, err, rs.got)
	}
	items, err := c.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web"}})
	if err != nil || len(items) != 1 {
		t.Errorf("ListPodSandbox: %v %v", items, err)
	}
	// Runtime errors keep their gRPC status, for callers that need the code.
	err = c.StopPodSandbox(ctx, "gone")
	if status.Code(err) != codes.NotFound {
		t.Errorf("StopPodSandbox error %v, want NotFound", err)
	}
	// An unimplemented call is an error, not a hang.
	if _, err := c.ListContainers(ctx, nil); status.Code(err) != codes.Unimplemented {
		t.Errorf("ListContainers error %v", err)
	}
}

// CRI-O serves gRPC and HTTP on one socket and hands a connection to its
// gRPC server only when the request's content-type is exactly
// "application/grpc"; anything else (a codec's "application/grpc+proto")
// reaches its HTTP server, which resets the connection. This server refuses
// the same requests, so every call of a client that names a codec fails.
func TestClientContentTypeIsPlainGRPC(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "crio.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	var mu sync.Mutex
	onlyPlainGRPC := func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if ct := info.Header.Get("content-type"); len(ct) != 1 || ct[0] != "application/grpc" {
			mu.Lock()
			refused = append(refused, fmt.Sprintf("%s: content-type %q", info.FullMethodName, ct))
			mu.Unlock()
			return nil, status.Error(codes.Unavailable, "not application/grpc: served as HTTP, connection reset")
		}
		return ctx, nil
	}
	srv := grpc.NewServer(grpc.InTapHandle(onlyPlainGRPC))
	rs := &runtimeServer{}
	runtimeapi.RegisterRuntimeServiceServer(srv, rs)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)

	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if v, err := c.Version(ctx, ""); err != nil || v.RuntimeName != "fake" {
		t.Errorf("Version: %v %v", v, err)
	}
	cfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Uid: "u1"}}
	if id, err := c.RunPodSandbox(ctx, cfg, ""); err != nil || id != "sb-1" || rs.got.Config.Metadata.Uid != "u1" {
		t.Errorf("RunPodSandbox: %q %v", id, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) > 0 {
		t.Errorf("requests a CRI-O socket refuses: %q", refused)
	}
}

// A call made while the runtime is down (restarting) waits for it, within
// the client's timeout.
func TestClientWaitsForRuntime(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cri.sock")
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, &runtimeServer{})
	defer srv.Stop()
	go func() {
		time.Sleep(300 * time.Millisecond)
		if l, err := net.Listen("unix", sock); err == nil {
			srv.Serve(l)
		}
	}()
	if _, err := c.Version(context.Background(), ""); err != nil {
		t.Fatalf("Version across a runtime start: %v", err)
	}

	down, err := New("unix://" + filepath.Join(t.TempDir(), "never.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	down.Timeout = 200 * time.Millisecond
	if _, err := down.Version(context.Background(), ""); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Version with no runtime: %v, want DeadlineExceeded", err)
	}
	// What tells that failure from a slow runtime's.
	if down.Reachable() {
		t.Error("a runtime whose socket is missing is reachable")
	}
	// Fail-fast calls do not wait for it.
	down.SetFailFast(true)
	down.Timeout = time.Minute
	if _, err := down.Version(context.Background(), ""); status.Code(err) != codes.Unavailable {
		t.Errorf("fail-fast Version with no runtime: %v, want Unavailable", err)
	}
	if !c.Reachable() {
		t.Error("a runtime that answered is not reachable")
	}
}

func TestEndpoint(t *testing.T) {
	for _, bad := range []string{"/run/containerd/containerd.sock", "tcp://127.0.0.1:1234", "unix://relative.sock", ""} {
		if _, err := New(bad); !errors.Is(err, ErrEndpoint) {
			t.Errorf("New(%q) = %v, want ErrEndpoint", bad, err)
		}
	}
}

func TestContainerdCgroupDriver(t *testing.T) {
	for config, want := range map[string]string{
		`{"containerd":{"defaultRuntimeName":"runc","runtimes":{"runc":{"options":{"SystemdCgroup":true}}}}}`: "systemd",
		`{"containerd":{"runtimes":{"runc":{"options":{"SystemdCgroup":false}}}}}`:                            "cgroupfs",
		`{"containerd":{"runtimes":{"runc":{"options":{}}}}}`:                                                 "cgroupfs",
		`{"containerd":{"defaultRuntimeName":"crun","runtimes":{"runc":{}}}}`:                                 "",
		`not json`: "",
	} {
		if got := containerdCgroupDriver(config); got != want {
			t.Errorf("%s: %q, want %q", config, got, want)
		}
	}
}

func TestContainerdSandboxImage(t *testing.T) {
	for config, want := range map[string]string{
		`{"sandboxImage":"registry.k8s.io/pause:3.6","containerd":{}}`: "registry.k8s.io/pause:3.6",
		`{"pinnedImages":{"sandbox":"registry.k8s.io/pause:3.10"}}`:    "registry.k8s.io/pause:3.10",
		`{"containerd":{}}`: "",
		`not json`:          "",
	} {
		if got := containerdSandboxImage(config); got != want {
			t.Errorf("%s: %q, want %q", config, got, want)
		}
	}
}

func TestContainerdOCIRuntime(t *testing.T) {
	for config, want := range map[string]string{
		`{"containerd":{"defaultRuntimeName":"runc","runtimes":{"runc":{"runtimeType":"io.containerd.runc.v2","options":{"SystemdCgroup":true}}}}}`:                                               "runc",
		`{"containerd":{"defaultRuntimeName":"runc","runtimes":{"runc":{"runtimeType":"io.containerd.runc.v2","options":{"BinaryName":"/usr/bin/crun"}}}}}`:                                       "crun",
		`{"containerd":{"defaultRuntimeName":"crun","runtimes":{"runc":{"runtimeType":"io.containerd.runc.v2"},"crun":{"runtimeType":"io.containerd.runc.v2","options":{"BinaryName":"crun"}}}}}`: "crun",
		`{"containerd":{"runtimes":{"runc":{"runtimeType":"io.containerd.runc.v2"}}}}`:                                                                                                            "runc",
		`{"containerd":{"defaultRuntimeName":"kata","runtimes":{"kata":{"runtimeType":"io.containerd.kata.v2"}}}}`:                                                                                "",
		`not json`: "",
	} {
		if got := containerdOCIRuntime(config); got != want {
			t.Errorf("%s: %q, want %q", config, got, want)
		}
	}
}

func TestCNIDirs(t *testing.T) {
	conf, plugins := cniDirs(`{"PluginDirs":["/usr/lib/cni"],"PluginConfDir":"/etc/cni/net.d","PluginMaxConfNum":1}`)
	if conf != "/etc/cni/net.d" || len(plugins) != 1 || plugins[0] != "/usr/lib/cni" {
		t.Errorf("cniDirs: %q %q", conf, plugins)
	}
	if conf, plugins := cniDirs(""); conf != "" || plugins != nil {
		t.Errorf("no info: %q %q", conf, plugins)
	}
}
