package podshim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DefaultStateDir is where podshim records each pod's state.
const DefaultStateDir = "/run/podunit/pods"

// State is what podshim records about its pod, in
// <StateDir>/<namespace>_<name>.json, for `podunit` and the status API.
type State struct {
	Namespace  string           `json:"namespace"`
	Name       string           `json:"name"`
	UID        string           `json:"uid"`
	SandboxID  string           `json:"sandboxID"`
	PodIP      string           `json:"podIP,omitempty"`
	PodIPs     []string         `json:"podIPs,omitempty"`
	StartTime  time.Time        `json:"startTime"`
	Containers []ContainerState `json:"containers"`
}

// ContainerState is one container's entry in State.
type ContainerState struct {
	Name         string `json:"name"`
	ID           string `json:"containerID"`
	Image        string `json:"image"`
	ImageRef     string `json:"imageRef"`
	State        string `json:"state"`
	RestartCount uint32 `json:"restartCount"`
}

// StatePath is the state file of pod namespace/name in dir.
func StatePath(dir, namespace, name string) string {
	return filepath.Join(dir, namespace+"_"+name+".json")
}

// ReadState reads a pod's state file.
func ReadState(dir, namespace, name string) (*State, error) {
	b, err := os.ReadFile(StatePath(dir, namespace, name))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("pod %s/%s: state file: %w", namespace, name, err)
	}
	return &st, nil
}

func (s *Shim) writeState(ctx context.Context) (*State, error) {
	sb, err := s.rt.PodSandboxStatus(ctx, s.sandboxID, false)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: status: %w", s.sandboxID, err)
	}
	st := &State{
		Namespace: s.pod.Namespace,
		Name:      s.pod.Name,
		UID:       string(s.pod.UID),
		SandboxID: s.sandboxID,
		StartTime: time.Unix(0, sb.GetStatus().GetCreatedAt()).UTC(),
	}
	if net := sb.GetStatus().GetNetwork(); net != nil && net.Ip != "" {
		st.PodIP = net.Ip
		st.PodIPs = append(st.PodIPs, net.Ip)
		for _, ip := range net.AdditionalIps {
			st.PodIPs = append(st.PodIPs, ip.Ip)
		}
	}
	existing, err := s.containers(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range s.pod.Spec.Containers {
		cs := ContainerState{Name: c.Name, Image: c.Image, State: "missing"}
		if list := existing[c.Name]; len(list) > 0 {
			cs.ID = "containerd://" + list[0].Id
			cs.ImageRef = list[0].ImageRef
			cs.State = list[0].State.String()
			cs.RestartCount = list[0].Metadata.GetAttempt()
		}
		st.Containers = append(st.Containers, cs)
	}
	if s.cfg.StateDir == "" {
		return st, nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(StatePath(s.cfg.StateDir, st.Namespace, st.Name), b); err != nil {
		return nil, fmt.Errorf("write state: %w", err)
	}
	return st, nil
}

func (s *Shim) removeState() {
	if s.cfg.StateDir == "" {
		return
	}
	err := os.Remove(StatePath(s.cfg.StateDir, s.pod.Namespace, s.pod.Name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove state file", "err", err)
	}
}

// writeFileAtomic replaces path with data so that readers never see a
// partial file.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
