package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/test/urlserver"
	"github.com/podunit/podunit/units/engine/enginetest"
)

func TestFetchKeepsTheLastGoodSet(t *testing.T) {
	srv := &urlserver.Server{Header: "Authorization", Value: "Bearer token"}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var out bytes.Buffer
	f := &fetcher{url: ts.URL, dir: t.TempDir(), report: &reporter{w: &out},
		headers: map[string][]string{"Authorization": {"Bearer token"}},
		client:  &http.Client{Timeout: 200 * time.Millisecond}}
	cache := filepath.Join(f.dir, urlManifest)
	ctx := context.Background()
	good := "apiVersion: v1\nkind: PodList\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: web}\n  spec: {containers: [{name: c, image: \"i:1\"}]}\n"

	srv.Answer(http.StatusOK, good, 0)
	if err := f.fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(cache); string(b) != good {
		t.Fatalf("cache %q", b)
	}
	if fi, _ := os.Stat(cache); fi.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v, want 0600 (it may hold Secrets)", fi.Mode().Perm())
	}
	if err := f.fetch(ctx); err != nil || srv.NotModified() != 1 {
		t.Errorf("second fetch: %v, 304s %d (If-None-Match not sent?)", err, srv.NotModified())
	}

	for _, bad := range []struct {
		name   string
		status int
		body   string
		delay  time.Duration
		want   string
	}{
		{"server error", http.StatusInternalServerError, "oops", 0, "HTTP 500"},
		{"garbage", http.StatusOK, "{{{ not yaml", 0, "not usable"},
		{"invalid pod", http.StatusOK, "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c}]}\n", 0, "spec.containers[0].image: required"},
		{"timeout", http.StatusOK, good + "# slow\n", time.Second, "Timeout"},
	} {
		srv.Answer(bad.status, bad.body, bad.delay)
		err := f.fetch(ctx)
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "keeping the last good set") {
			t.Errorf("%s: error %v, want one with %q that keeps the last good set", bad.name, err, bad.want)
		}
		if b, _ := os.ReadFile(cache); string(b) != good {
			t.Errorf("%s replaced the last good set: %q", bad.name, b)
		}
	}
	f.headers = nil
	srv.Answer(http.StatusOK, good, 0)
	if err := f.fetch(ctx); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("without the header: %v", err)
	}

	// An empty answer is an explicit empty set: the URL's pods go.
	f.headers = map[string][]string{"Authorization": {"Bearer token"}}
	srv.Answer(http.StatusOK, "\n", 0)
	if err := f.fetch(ctx); err != nil {
		t.Fatal(err)
	}
	set, err := generator.ReadSources(generator.Source{Dir: f.dir, Origin: ts.URL})
	if err != nil || len(set.Errors) > 0 || len(set.Pods) != 0 {
		t.Errorf("after an empty answer: pods %v, errors %v, err %v", set.Pods, set.Errors, err)
	}
}

// Pods from the URL run beside the directory's, annotated as the kubelet
// annotates staticPodURL pods; the directory wins a name both define.
func TestSyncRunsURLPods(t *testing.T) {
	s, m, _, out := enginetest.NewSyncer(t)
	cache := filepath.Join(t.TempDir(), "url")
	s.Sources = append(s.Sources, generator.Source{Dir: cache, Origin: "http://config.example/pods"})
	enginetest.Write(t, s.Sources[0].Dir, "web.yaml", enginetest.Pod("web", "img:1"))
	enginetest.Write(t, cache, urlManifest, enginetest.Pod("web", "img:2")+"---\n"+enginetest.Pod("api", "img:1"))
	if err := enginetest.Run(context.Background(), s); err == nil || !strings.Contains(out.String(), "pod default/web is already defined in "+filepath.Join(s.Sources[0].Dir, "web.yaml")) {
		t.Errorf("conflict not reported: %v\n%s", err, out)
	}
	if _, ok := m.Units["pod-api.service"]; !ok {
		t.Fatalf("units %v", m.Units)
	}
	specs, _ := filepath.Glob(filepath.Join(s.UnitConfig.SpecDir, "default_api-*.json"))
	p, err := generator.FromSpec(podspec.ReadSpec(specs[0]))
	if err != nil || p.Spec.Annotations[generator.AnnotationConfigSource] != "http" || p.Spec.Annotations[generator.AnnotationManifest] != "http://config.example/pods" {
		t.Errorf("annotations %v (%v)", p.Spec.Annotations, err)
	}
}
