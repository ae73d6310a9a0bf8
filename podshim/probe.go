package podshim

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeKind names a probe as Kubernetes does.
type probeKind string

const (
	startupProbe   probeKind = "Startup"
	livenessProbe  probeKind = "Liveness"
	readinessProbe probeKind = "Readiness"
)

// probes runs one container instance's probes, each in its own goroutine, as
// the kubelet's probe workers do: a startup probe first (liveness and
// readiness wait for it), then liveness and readiness every period. Results
// are read by the main loop; a change wakes it.
type probes struct {
	mu      sync.Mutex
	started bool // no startup probe, or it succeeded
	ready   bool // no readiness probe, or it passes
	failed  string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// result is the container's probe state: started, ready, and why it must be
// restarted ("" when it must not).
func (p *probes) result() (started, ready bool, failed string) {
	if p == nil {
		return true, true, ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started, p.ready, p.failed
}

func (p *probes) stop() {
	if p != nil {
		p.cancel()
		p.wg.Wait()
	}
}

// startProbes starts the probe workers of c's current instance.
func (s *Shim) startProbes(c *container) *probes {
	spec := c.spec
	if spec.StartupProbe == nil && spec.LivenessProbe == nil && spec.ReadinessProbe == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &probes{
		started: spec.StartupProbe == nil,
		ready:   spec.ReadinessProbe == nil,
		cancel:  cancel,
	}
	startedCh := make(chan struct{})
	if p.started {
		close(startedCh)
	}
	run := func(kind probeKind, probe *corev1.Probe, gate bool) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if gate {
				select {
				case <-startedCh:
				case <-ctx.Done():
					return
				}
			}
			s.probeWorker(ctx, c.spec, c.id, kind, probe, func(ok bool, msg string) bool {
				p.mu.Lock()
				defer p.mu.Unlock()
				switch kind {
				case startupProbe:
					if ok {
						p.started = true
						close(startedCh)
						s.wakeUp()
						return false // done
					}
					p.failed = msg
				case livenessProbe:
					if !ok {
						p.failed = msg
					}
				case readinessProbe:
					if p.ready != ok {
						p.ready = ok
					}
				}
				s.wakeUp()
				return true
			})
		}()
	}
	if spec.StartupProbe != nil {
		run(startupProbe, spec.StartupProbe, false)
	}
	if spec.LivenessProbe != nil {
		run(livenessProbe, spec.LivenessProbe, true)
	}
	if spec.ReadinessProbe != nil {
		run(readinessProbe, spec.ReadinessProbe, true)
	}
	return p
}

// probeWorker runs one probe every period and calls report when the result
// crosses its threshold (successThreshold successes, failureThreshold
// failures in a row). It ends when ctx is done or report returns false.
func (s *Shim) probeWorker(ctx context.Context, spec *corev1.Container, id string, kind probeKind, probe *corev1.Probe,
	report func(ok bool, msg string) bool) {
	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	if !sleep(time.Duration(probe.InitialDelaySeconds) * time.Second) {
		return
	}
	period := time.Duration(max(probe.PeriodSeconds, 1)) * time.Second
	successes, failures := int32(0), int32(0)
	for {
		err := s.probeOnce(ctx, spec, id, probe)
		if ctx.Err() != nil {
			return
		}
		if s.runtimeUnavailable(err) {
			// As the kubelet: a probe the runtime could not run (it is
			// stopped or restarting) says nothing of the container; its
			// result is thrown away, so an outage kills nothing.
			s.log.Debug(string(kind)+" probe not run: the CRI runtime is unavailable", "container", spec.Name, "err", err)
		} else if err == nil {
			successes, failures = successes+1, 0
			if successes == max(probe.SuccessThreshold, 1) {
				if !report(true, "") {
					return
				}
			}
		} else {
			failures, successes = failures+1, 0
			s.probeFailures.add(spec.Name + "/" + strings.ToLower(string(kind)))
			s.log.Info(string(kind)+" probe failed", "container", spec.Name, "err", err)
			if failures == max(probe.FailureThreshold, 1) {
				msg := fmt.Sprintf("%s probe failed %d times: %v", kind, failures, err)
				if !report(false, msg) {
					return
				}
			}
		}
		if !sleep(period) {
			return
		}
	}
}

// probeOnce runs a probe's handler once. httpGet, tcpSocket and grpc probes
// are made by podshim from the node to the pod IP, never inside the image.
func (s *Shim) probeOnce(ctx context.Context, spec *corev1.Container, id string, probe *corev1.Probe) error {
	timeout := time.Duration(max(probe.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h := probe.ProbeHandler
	switch {
	case h.Exec != nil:
		_, _, err := s.rt.ExecSync(ctx, id, h.Exec.Command, timeout)
		return err
	case h.HTTPGet != nil:
		return s.probeHTTP(ctx, spec, h.HTTPGet)
	case h.TCPSocket != nil:
		port, err := resolvePort(h.TCPSocket.Port, spec)
		if err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(s.probeHost(h.TCPSocket.Host), strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case h.GRPC != nil:
		return s.probeGRPC(ctx, h.GRPC)
	}
	return fmt.Errorf("probe has no handler")
}

func (s *Shim) probeHost(host string) string {
	if host != "" {
		return host
	}
	if len(s.podIPs) > 0 {
		return s.podIPs[0]
	}
	return "127.0.0.1"
}

func (s *Shim) probeHTTP(ctx context.Context, spec *corev1.Container, g *corev1.HTTPGetAction) error {
	port, err := resolvePort(g.Port, spec)
	if err != nil {
		return err
	}
	u := url.URL{
		Scheme: strings.ToLower(string(g.Scheme)),
		Host:   net.JoinHostPort(s.probeHost(g.Host), strconv.Itoa(port)),
		Path:   g.Path,
	}
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	if i := strings.IndexByte(g.Path, '?'); i >= 0 {
		u.Path, u.RawQuery = g.Path[:i], g.Path[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-probe/podunit")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
		} else {
			req.Header.Add(h.Name, h.Value)
		}
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

// probeClient is the kubelet's: no keep-alive, no certificate checks.
var probeClient = &http.Client{Transport: &http.Transport{
	DisableKeepAlives: true,
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet's probes
}}

func (s *Shim) probeGRPC(ctx context.Context, g *corev1.GRPCAction) error {
	conn, err := grpc.NewClient(net.JoinHostPort(s.probeHost(""), strconv.Itoa(int(g.Port))),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return err
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("service unhealthy (responded with %q)", resp.Status)
	}
	return nil
}

// resolvePort returns a probe's port number: a number, or the name of one of
// the container's ports.
func resolvePort(p intstr.IntOrString, spec *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range spec.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("container %s has no port named %q", spec.Name, p.StrVal)
}

// probeCounts counts failed probes by "container/kind"; the probe workers
// add, the state file records them at its next write.
type probeCounts struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *probeCounts) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	c.n[key]++
}

func (c *probeCounts) restore(n map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = maps.Clone(n)
}

func (c *probeCounts) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}
