package criclient

import (
	"testing"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestCodecRoundTrip goes through the gRPC codec the client uses, and its
// fallback for messages that are not CRI's.
func TestCodecRoundTrip(t *testing.T) {
	c, ok := encoding.GetCodecV2("proto").(codec)
	if !ok {
		t.Fatalf("gRPC's proto codec is %T, not criclient's: CRI messages would go through protobuf's reflection", encoding.GetCodecV2("proto"))
	}
	in := &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u1", Attempt: 2},
		Labels:   map[string]string{"io.podunit": "yes"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			SupplementalGroups: []int64{1, 2, 3000},
		}},
	}, RuntimeHandler: "runc"}
	data, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := &runtimeapi.RunPodSandboxRequest{RuntimeHandler: "stale"}
	if err := c.Unmarshal(data, out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("want %v\n got %v", in, out)
	}

	// A message from outside CRI goes to protobuf.
	data, err = c.Marshal(wrapperspb.String("v1"))
	if err != nil {
		t.Fatal(err)
	}
	var back wrapperspb.StringValue
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data.Materialize())}, &back); err != nil || back.Value != "v1" {
		t.Fatalf("got %v, %v", &back, err)
	}
}
