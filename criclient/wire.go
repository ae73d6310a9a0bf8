package criclient

//go:generate go run ./internal/wiregen/gen -o wire_gen.go

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // the fallback codec
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// codec is gRPC's "proto" codec for CRI messages, written as plain code
// (wire_gen.go, made by internal/wiregen) instead of protobuf's reflection:
// the first reflective marshal parses the whole CRI file descriptor and builds
// a table per message type, about 0.8 MB allocated and 0.5 MB kept for good,
// in every podshim (docs/benchmarks.md). The bytes on the wire are the same
// protobuf encoding; a message that is not a CRI message goes to gRPC's own
// codec.
type codec struct{ fallback encoding.CodecV2 }

func newCodec() codec { return codec{fallback: encoding.GetCodecV2("proto")} }

func (codec) Name() string { return "proto" }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := marshalMessage(v)
	if !ok {
		return c.fallback.Marshal(v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	// Decoding copies every string and bytes field, so the pooled buffer
	// can go back to the pool.
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	ok, err := unmarshalMessage(buf.ReadOnlyData(), v)
	if !ok {
		return c.fallback.Unmarshal(data, v)
	}
	return err
}

// The helpers below are the parts of wire_gen.go that do not depend on the
// message: CRI's maps are all map<string, string>, encoded as repeated entry
// messages of key (1) and value (2).

func sizeStringMap(num protowire.Number, m map[string]string) (n int) {
	for k, v := range m {
		n += protowire.SizeTag(num) + protowire.SizeBytes(sizeMapEntry(k, v))
	}
	return n
}

func sizeMapEntry(k, v string) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(len(v))
}

func appendStringMap(b []byte, num protowire.Number, m map[string]string) []byte {
	for k, v := range m {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeMapEntry(k, v)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}

// consumeStringMapEntry reads one length-prefixed map entry from b into m and
// returns how much of b it read, or a negative protowire error code.
func consumeStringMapEntry(b []byte, m map[string]string) int {
	entry, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return n
	}
	var k, v string
	for len(entry) > 0 {
		num, typ, t := protowire.ConsumeTag(entry)
		if t < 0 || num > protowire.MaxValidNumber {
			return -1
		}
		entry = entry[t:]
		var l int
		switch {
		case num == 1 && typ == protowire.BytesType:
			k, l = protowire.ConsumeString(entry)
		case num == 2 && typ == protowire.BytesType:
			v, l = protowire.ConsumeString(entry)
		default:
			l = protowire.ConsumeFieldValue(num, typ, entry)
		}
		if l < 0 {
			return l
		}
		entry = entry[l:]
	}
	m[k] = v
	return n
}

// consumeTag is protowire.ConsumeTag, and rejects field numbers above the
// largest valid one as protobuf's own decoder does.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, 0, protowire.ParseError(n)
	}
	if num > protowire.MaxValidNumber {
		return 0, 0, 0, fmt.Errorf("invalid field number %d", num)
	}
	return num, typ, n, nil
}

// skipFields checks b is well-formed fields of a message that has none.
func skipFields(b []byte) error {
	for len(b) > 0 {
		num, typ, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}
