// Package generator turns Kubernetes manifests into the pods podunit runs and
// the systemd units that run them.
//
// It is pure translation: bytes in, validated and defaulted pods out, each
// with its config hash, then unit definitions from the units package's model.
// The only I/O is reading the manifest sources it is asked to read.
//
// Decoding is strict. A field that does not exist in the v1 Pod type, a field
// podunit does not implement (see [Fields]), a value of the wrong type and an
// invalid value are all errors naming the file, the line and the field path.
// Nothing is silently dropped.
package generator
