package oracle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Judge sends documents to a kube-apiserver as server-side dry-run
// creates with strict field validation, over plain REST.
type Judge struct {
	Base   string // https://127.0.0.1:port
	Token  string // a bearer token the server accepts
	Client *http.Client

	lists map[string]*metav1.APIResourceList // by group/version; nil: not served
}

// ServerVerdict is the API server's answer to one dry-run create.
type ServerVerdict struct {
	Status  int    // the HTTP status; 0 when no request could be made
	Message string // the Status's message when refused
	Causes  []metav1.StatusCause
}

// Accepted tells whether the server would have created the object.
func (v ServerVerdict) Accepted() bool { return v.Status >= 200 && v.Status < 300 }

// Create judges one document: its apiVersion and kind name the resource
// (from the server's discovery), its metadata.namespace the namespace
// ("default" when none). A document that names no kind the server serves
// is refused with the reason; one that is not YAML goes to the pods
// resource as it is, for the server to say what is wrong. A List is
// judged item by item, as kubectl sends its items: accepted when all are.
func (j *Judge) Create(ctx context.Context, doc []byte) (ServerVerdict, error) {
	js, err := yaml.YAMLToJSON(doc)
	var head struct {
		APIVersion string                     `json:"apiVersion"`
		Kind       string                     `json:"kind"`
		Metadata   struct{ Namespace string } `json:"metadata"`
		Items      []json.RawMessage          `json:"items"`
	}
	if err != nil || json.Unmarshal(js, &head) != nil {
		return j.post(ctx, "/api/v1/namespaces/default/pods", "application/yaml", doc)
	}
	if head.Kind == "List" && head.APIVersion == "v1" {
		for i, item := range head.Items {
			v, err := j.Create(ctx, item)
			if err != nil || !v.Accepted() {
				v.Message = fmt.Sprintf("items[%d]: %s", i, v.Message)
				return v, err
			}
		}
		return ServerVerdict{Status: http.StatusCreated}, nil
	}
	if head.APIVersion == "" || head.Kind == "" {
		return j.post(ctx, "/api/v1/namespaces/default/pods", "application/yaml", doc)
	}
	res, err := j.resource(ctx, head.APIVersion, head.Kind)
	if err != nil {
		return ServerVerdict{}, err
	}
	if res == nil {
		return ServerVerdict{Message: fmt.Sprintf("no resource of kind %s in %s is served", head.Kind, head.APIVersion)}, nil
	}
	path := groupPath(head.APIVersion)
	if res.Namespaced {
		ns := head.Metadata.Namespace
		if ns == "" {
			ns = "default"
		}
		path += "/namespaces/" + url.PathEscape(ns)
	}
	return j.post(ctx, path+"/"+res.Name, "application/yaml", doc)
}

// EnsureNamespace creates namespace name (for real), so that documents in
// it can be judged; one that exists or that the server refuses is left.
func (j *Judge) EnsureNamespace(ctx context.Context, name string) error {
	body, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]string{"name": name}})
	_, _, err := j.do(ctx, http.MethodPost, "/api/v1/namespaces", "application/json", body)
	return err
}

func (j *Judge) post(ctx context.Context, path, contentType string, body []byte) (ServerVerdict, error) {
	code, data, err := j.do(ctx, http.MethodPost, path+"?dryRun=All&fieldValidation=Strict", contentType, body)
	if err != nil {
		return ServerVerdict{}, err
	}
	v := ServerVerdict{Status: code}
	if v.Accepted() {
		return v, nil
	}
	var st metav1.Status
	if json.Unmarshal(data, &st) != nil || st.Kind != "Status" {
		v.Message = string(data) // not a Status: the text is the answer
		return v, nil
	}
	v.Message = st.Message
	if st.Details != nil {
		v.Causes = st.Details.Causes
	}
	return v, nil
}

// resource is the resource serving kind in apiVersion, nil when none is.
func (j *Judge) resource(ctx context.Context, apiVersion, kind string) (*metav1.APIResource, error) {
	if j.lists == nil {
		j.lists = map[string]*metav1.APIResourceList{}
	}
	list, seen := j.lists[apiVersion]
	if !seen {
		code, data, err := j.do(ctx, http.MethodGet, groupPath(apiVersion), "", nil)
		if err != nil {
			return nil, fmt.Errorf("discover %s: %w", apiVersion, err)
		}
		if code == http.StatusOK {
			list = &metav1.APIResourceList{}
			if err := json.Unmarshal(data, list); err != nil {
				return nil, fmt.Errorf("discover %s: %w", apiVersion, err)
			}
		}
		j.lists[apiVersion] = list
	}
	if list == nil {
		return nil, nil
	}
	for i, r := range list.APIResources {
		if r.Kind == kind && !strings.Contains(r.Name, "/") {
			return &list.APIResources[i], nil
		}
	}
	return nil, nil
}

// do sends one request and gives the status and the body of the answer.
func (j *Judge) do(ctx context.Context, method, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, j.Base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+j.Token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := j.Client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp.StatusCode, data, nil
}

func groupPath(apiVersion string) string {
	if !strings.Contains(apiVersion, "/") {
		return "/api/" + url.PathEscape(apiVersion)
	}
	group, version, _ := strings.Cut(apiVersion, "/")
	return "/apis/" + url.PathEscape(group) + "/" + url.PathEscape(version)
}
