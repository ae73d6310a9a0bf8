// Package oracle judges podunit's reading of manifests against a real
// kube-apiserver (issue #29): every document of podunit's corpora is sent
// through a server-side dry-run create with strict field validation, and
// the API server's verdict is compared with podunit's (generator's
// Reader.Check, what `podunit validate` runs).
//
// The pure parts are here: splitting a file into the documents kubectl
// would send (Split), podunit's verdict per document (Podunit), the
// findings of one comparison (Compare) and the table of known differences
// in docs/oracle.md (ParseTable, RenderTable). The API server is reached
// through a Judge over plain REST. oracle_test.go starts etcd and
// kube-apiserver (built by test/k8s/build.sh) and runs the corpora; it is
// skipped when PODUNIT_K8S_BIN does not name their directory.
package oracle
