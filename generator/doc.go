// Package generator turns Kubernetes manifests into the pods podunit runs and
// the systemd units that run them, and into the Services the node serves.
//
// It is pure translation: bytes in, validated and defaulted pods out, each
// with its config hash, then unit definitions from the units package's model;
// Services out, checked against the node's ranges and each other, each with
// its model for the node's rules and resolver (package cni/service).
// The only I/O is reading the manifest sources it is asked to read.
//
// Every field of every kind it reads is in one class (policy.go), kept in
// the kind's field list (Fields, Kinds), which also drives the docs and
// `podunit explain`: honoured; dropped without a word (what a server
// wrote); accepted with a Notice (what only a scheduler or an API server
// acts on); evaluated against the Node as the kubelet's admission does
// (Admit); or rejected. A typo, a field podunit does not implement, a value
// of the wrong type and an invalid value are errors naming the file, the
// line and the field path. Nothing is silently ignored, and a notice is not
// an error unless the Reader is Strict.
package generator
