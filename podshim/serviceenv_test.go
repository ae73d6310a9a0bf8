package podshim

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/cni/service"
)

// podshim reads the node's Service table each time it creates a container,
// as the kubelet reads its Service cache: a container restarted after a
// Service appeared has that Service's variables; a table that cannot be
// read holds the container back (CreateContainerConfigError) instead of
// starting it without them.
func TestServiceEnvFromTheTableAtEachCreation(t *testing.T) {
	table := filepath.Join(t.TempDir(), "services.json")
	write := func(services ...service.Service) {
		t.Helper()
		b, err := (&service.Table{Services: services}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(table, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := service.Service{Namespace: "shop", Name: "db", Type: service.ClusterIP, ClusterIP: netip.MustParseAddr("10.96.0.33"),
		Ports: []service.Port{{Protocol: service.TCP, Port: 3306}}}
	cache := service.Service{Namespace: "shop", Name: "cache", Type: service.ClusterIP, ClusterIP: netip.MustParseAddr("10.96.0.44"),
		Ports: []service.Port{{Protocol: service.TCP, Port: 6379}}}
	write(db)

	rt := &recordingCRI{fakeCRI: newFakeCRI("busybox:1")}
	clk := &clock{now: time.Unix(1_000_000, 0)}
	s := newShim(t, testPod(), rt, &notes{})
	s.cfg.ServiceTable, s.cfg.Now = table, clk.Now
	ctx := context.Background()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	env := func(c *runtimeapi.ContainerConfig) string {
		var kv []string
		for _, e := range c.Envs {
			kv = append(kv, e.Key+"="+string(e.Value))
		}
		return strings.Join(kv, " ")
	}
	if got := env(rt.created[0]); !strings.Contains(got, "DB_SERVICE_HOST=10.96.0.33") || strings.Contains(got, "CACHE_") {
		t.Errorf("first container's env: %s", got)
	}

	write(db, cache)
	exit(rt.fakeCRI, 1, clk.now)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(rt.created) != 2 {
		t.Fatalf("%d containers created, want the restart", len(rt.created))
	}
	if got := env(rt.created[1]); !strings.Contains(got, "DB_SERVICE_HOST=10.96.0.33") || !strings.Contains(got, "CACHE_SERVICE_HOST=10.96.0.44") {
		t.Errorf("restarted container's env: %s", got)
	}

	if err := os.WriteFile(table, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	exit(rt.fakeCRI, 1, clk.now)
	if err := s.reconcile(ctx); err != nil { // the back-off starts
		t.Fatal(err)
	}
	clk.now = clk.now.Add(time.Minute)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(rt.created) != 2 {
		t.Errorf("a container was created without its Service variables")
	}
	st, err := ReadState(s.cfg.StateDir, "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	if w := st.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "CreateContainerConfigError" || !strings.Contains(w.Message, "Service table") {
		t.Errorf("container state with an unreadable table: %+v", st.Status.ContainerStatuses[0].State)
	}
}
