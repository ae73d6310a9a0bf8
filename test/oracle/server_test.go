package oracle

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Judge routes each document to the resource the server's discovery
// names for its kind, as a strict dry-run create, and reads a refusal's
// Status; a List is judged item by item.
func TestJudgeRoutes(t *testing.T) {
	var posts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "GET /api/v1":
			_ = json.NewEncoder(w).Encode(metav1.APIResourceList{GroupVersion: "v1", APIResources: []metav1.APIResource{
				{Name: "pods", Namespaced: true, Kind: "Pod"},
				{Name: "pods/status", Namespaced: true, Kind: "Pod"},
				{Name: "namespaces", Kind: "Namespace"},
			}})
			return
		case "GET /apis/apps/v1":
			_ = json.NewEncoder(w).Encode(metav1.APIResourceList{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{{Name: "deployments", Namespaced: true, Kind: "Deployment"}}})
			return
		}
		if r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		posts = append(posts, r.URL.RequestURI()+" "+r.Header.Get("Content-Type"))
		if strings.Contains(string(body), "refuse-me") {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status"}, Message: "invalid", Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Field: "metadata.name"}}}})
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	const q = "?dryRun=All&fieldValidation=Strict "
	tests := []struct {
		name     string
		doc      string
		accepted bool
		message  string
		posts    []string
	}{
		{"namespaced pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: shop}\n", true, "", []string{"/api/v1/namespaces/shop/pods" + q + "application/yaml"}},
		{"default namespace", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n", true, "", []string{"/apis/apps/v1/namespaces/default/deployments" + q + "application/yaml"}},
		{"cluster-scoped", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n", true, "", []string{"/api/v1/namespaces" + q + "application/yaml"}},
		{"refused, with its Status", "apiVersion: v1\nkind: Pod\nmetadata: {name: refuse-me}\n", false, "invalid", []string{"/api/v1/namespaces/default/pods" + q + "application/yaml"}},
		{"kind not served: no request", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: a}\n", false, "no resource of kind ServiceMonitor in monitoring.coreos.com/v1 is served", nil},
		{"a List, item by item", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n- {apiVersion: v1, kind: Pod, metadata: {name: refuse-me}}\n", false, "items[1]: invalid",
			[]string{"/api/v1/namespaces/default/pods" + q + "application/yaml", "/api/v1/namespaces/default/pods" + q + "application/yaml"}},
		{"not YAML: to the pods resource as it is", "a: [\n", true, "", []string{"/api/v1/namespaces/default/pods" + q + "application/yaml"}},
	}
	j := &Judge{Base: srv.URL, Token: "tok", Client: srv.Client()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			posts = nil
			v, err := j.Create(t.Context(), []byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if v.Accepted() != tt.accepted || v.Message != tt.message {
				t.Errorf("verdict %+v, want accepted %v, message %q", v, tt.accepted, tt.message)
			}
			if !reflect.DeepEqual(posts, tt.posts) {
				t.Errorf("requests %q, want %q", posts, tt.posts)
			}
		})
	}
}
