package main

import (
	"strconv"

	"github.com/coreos/go-systemd/v22/journal"
	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/podshim"
)

// journalSink sends container output to journald over its native protocol.
// podshim runs in the pod's unit, so journald files every line under that
// unit: `journalctl -u pod-web` shows the pod, and the fields select a
// container (`journalctl -u pod-web CONTAINER_NAME=nginx`) or a stream.
// stderr is logged at priority err, stdout at info, as Docker's journald
// driver does.
func journalSink(pod *corev1.Pod) podshim.LogSink {
	return func(l podshim.LogLine) error {
		prio := journal.PriInfo
		if l.Stream == "stderr" {
			prio = journal.PriErr
		}
		return journal.Send(l.Message, prio, map[string]string{
			"SYSLOG_IDENTIFIER":       l.Container,
			"CONTAINER_NAME":          l.Container,
			"CONTAINER_ID":            l.ContainerID,
			"CONTAINER_RESTART_COUNT": strconv.FormatUint(uint64(l.RestartCount), 10),
			"POD_NAME":                pod.Name,
			"POD_NAMESPACE":           pod.Namespace,
			"POD_UID":                 string(pod.UID),
			"STREAM":                  l.Stream,
			"CONTAINER_TIMESTAMP":     l.Time.UTC().Format("2006-01-02T15:04:05.000000000Z"),
		})
	}
}
