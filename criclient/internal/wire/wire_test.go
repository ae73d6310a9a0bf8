package wire

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/criclient/internal/wiregen"
)

// criMessages is every message type of the CRI API.
func criMessages(t testing.TB) []protoreflect.MessageType {
	file := (&runtimeapi.VersionRequest{}).ProtoReflect().Descriptor().ParentFile()
	var types []protoreflect.MessageType
	for i := range file.Messages().Len() {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(file.Messages().Get(i).FullName())
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, mt)
	}
	if len(types) < 100 {
		t.Fatalf("only %d CRI messages found", len(types))
	}
	return types
}

// TestWireMatchesProto checks the generated code against
// google.golang.org/protobuf for every CRI message, filled at random: what
// one encodes the other decodes to an equal message, and both encodings
// have the same length.
func TestWireMatchesProto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, mt := range criMessages(t) {
		t.Run(string(mt.Descriptor().Name()), func(t *testing.T) {
			for range 30 {
				m := mt.New()
				fill(rng, m, 3)
				want := m.Interface()

				ours, ok := Marshal(want)
				if !ok {
					t.Fatal("not a CRI message to the generated code")
				}
				if n := proto.Size(want); len(ours) != n {
					t.Fatalf("encoded in %d bytes, protobuf says %d", len(ours), n)
				}
				got := mt.New().Interface()
				if err := proto.Unmarshal(ours, got); err != nil {
					t.Fatalf("protobuf cannot decode our encoding: %v", err)
				}
				if !proto.Equal(want, got) {
					t.Fatalf("ours → protobuf:\n want %.600v\n got  %.600v", want, got)
				}

				theirs, err := proto.Marshal(want)
				if err != nil {
					t.Fatal(err)
				}
				got = mt.New().Interface()
				if ok, err := Unmarshal(theirs, got); !ok || err != nil {
					t.Fatalf("decoding protobuf's encoding: ok %v, %v", ok, err)
				}
				if !proto.Equal(want, got) {
					t.Fatalf("protobuf → ours:\n want %.600v\n got  %.600v", want, got)
				}
			}
		})
	}
}

// fill sets every field of m at random: zero and non-zero scalars, negative
// numbers, unknown enum values, empty and full lists and maps, and nested
// messages down to depth.
func fill(rng *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range rng.IntN(4) {
				mp.Set(protoreflect.ValueOfString(randString(rng)).MapKey(), protoreflect.ValueOfString(randString(rng)))
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range rng.IntN(4) {
				if fd.Kind() == protoreflect.MessageKind {
					if depth > 0 {
						e := l.NewElement()
						fill(rng, e.Message(), depth-1)
						l.Append(e)
					}
					continue
				}
				l.Append(randScalar(rng, fd))
			}
		case fd.Kind() == protoreflect.MessageKind:
			if depth > 0 && rng.IntN(3) > 0 {
				fill(rng, m.Mutable(fd).Message(), depth-1)
			}
		default:
			if rng.IntN(4) > 0 {
				m.Set(fd, randScalar(rng, fd))
			}
		}
	}
}

func randScalar(rng *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(rng.IntN(2) == 1)
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32([]int32{0, -1, 1, math.MinInt32, math.MaxInt32, rng.Int32()}[rng.IntN(6)])
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64([]int64{0, -1, 300, math.MinInt64, math.MaxInt64, rng.Int64()}[rng.IntN(6)])
	case protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint32([]uint32{0, 1, math.MaxUint32, rng.Uint32()}[rng.IntN(4)])
	case protoreflect.Uint64Kind:
		return protoreflect.ValueOfUint64([]uint64{0, 1, math.MaxUint64, rng.Uint64()}[rng.IntN(4)])
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64([]float64{0, -1.5, math.MaxFloat64, rng.Float64()}[rng.IntN(4)])
	case protoreflect.EnumKind:
		// An unknown number too: proto3 enums are open.
		vals := fd.Enum().Values()
		if rng.IntN(5) == 0 {
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(rng.IntN(1000) - 500))
		}
		return protoreflect.ValueOfEnum(vals.Get(rng.IntN(vals.Len())).Number())
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(randString(rng))
	case protoreflect.BytesKind:
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return protoreflect.ValueOfBytes(b)
	}
	panic("kind " + fd.Kind().String())
}

func randString(rng *rand.Rand) string {
	const alphabet = "abcxyz-_./ é€🙂"
	runes := []rune(alphabet)
	var b strings.Builder
	for range rng.IntN(200) {
		b.WriteRune(runes[rng.IntN(len(runes))])
	}
	return b.String()
}

// TestWireDecodeSkipsUnknownFields: a newer runtime's fields are skipped,
// in every wire type, and the known ones still read.
func TestWireDecodeSkipsUnknownFields(t *testing.T) {
	b, _ := Marshal(&runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "containerd"})
	b = protowire.AppendTag(b, 90, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 91, protowire.BytesType)
	b = protowire.AppendString(b, "new")
	b = protowire.AppendTag(b, 92, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 1)
	b = protowire.AppendTag(b, 93, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 1)
	// A known field with the wrong wire type is unknown too, as protobuf has it.
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	var got runtimeapi.VersionResponse
	if _, err := Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != "0.1.0" || got.RuntimeName != "containerd" {
		t.Fatalf("got %v", &got)
	}
}

// TestWireDecodeRejectsTruncated: every cut of a valid message but the ones
// ending on a field boundary is an error, never a panic or a silent half.
func TestWireDecodeRejectsTruncated(t *testing.T) {
	full, _ := Marshal(&runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{
		Id: "abc", Labels: map[string]string{"a": "b"}, ExitCode: -1,
		Mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv"}},
	}})
	for i := range len(full) {
		var got runtimeapi.ContainerStatusResponse
		if _, err := Unmarshal(full[:i], &got); err == nil && i > 0 {
			t.Errorf("%d of %d bytes decoded without error", i, len(full))
		}
	}
}

// TestWireGenUpToDate: wire_gen.go is what wiregen writes for the cri-api in
// go.mod; after a cri-api upgrade, run go generate ./criclient/internal/wire.
func TestWireGenUpToDate(t *testing.T) {
	want, err := wiregen.Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("wire_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("wire_gen.go is stale: run go generate ./criclient/internal/wire")
	}
}

// FuzzWireDecode: whatever protobuf decodes, the generated code decodes to
// the same message (unknown fields aside); what protobuf rejects, it rejects
// too, but for strings that are not UTF-8, which it does not check (the
// runtimes encode with protobuf, which does).
func FuzzWireDecode(f *testing.F) {
	seed, _ := Marshal(&runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{
		Id: "abc", Labels: map[string]string{"a": "b"}, ExitCode: -1,
		Mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv", UidMappings: []*runtimeapi.IDMapping{{HostId: 1}}}},
	}, Info: map[string]string{"info": "{}"}})
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		want := &runtimeapi.ContainerStatusResponse{}
		perr := proto.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, want)
		got := &runtimeapi.ContainerStatusResponse{}
		_, err := Unmarshal(b, got)
		switch {
		case perr == nil && err != nil:
			t.Fatalf("protobuf decodes it, ours: %v", err)
		case perr == nil && !proto.Equal(want, got):
			t.Fatalf("want %v\n got %v", want, got)
		case perr != nil && err == nil && !strings.Contains(perr.Error(), "UTF-8"):
			t.Fatalf("protobuf rejects it (%v), ours does not", perr)
		}
	})
}
