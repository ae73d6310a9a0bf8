package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/atomicfile"
)

// DefaultURLCache is where `podunit fetch` keeps the last good answer of
// manifestURL, which sync reads as a second manifest directory (and
// podunit.path watches, so a change is picked up at once).
const DefaultURLCache = "/var/lib/podunit/url"

// urlManifest is the cached answer's file name in the cache directory.
const urlManifest = "manifests.yaml"

// emptySet is what an explicitly empty answer (a 200 with no documents)
// becomes: an empty List, which removes the URL's pods.
const emptySet = "apiVersion: v1\nkind: List\nitems: []\n"

func newFetchCommand() *cobra.Command {
	var (
		configPath, cache, kubeletConfig string
		once                             bool
	)
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "fetch manifestURL into the set sync runs (podunit-fetch.service)",
		Long: `Fetches manifestURL (config.yaml) as the kubelet fetches staticPodURL: with
manifestURLHeaders, a timeout and If-None-Match. A good answer replaces the
cached one, which sync runs; a failed fetch (error, non-200, undecodable)
keeps the last good set and is reported. Without manifestURL it exits.`,
		Args: exactArgs(0, "no arguments"),
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", DefaultConfigPath, "configuration file")
	f.StringVar(&cache, "cache", DefaultURLCache, "where the last good answer is kept")
	f.StringVar(&kubeletConfig, "kubelet-config", "", "a kubelet's KubeletConfiguration whose staticPodURL to fetch (config key kubeletConfig)")
	f.BoolVar(&once, "once", false, "fetch once and exit (default: every manifestURLInterval until stopped)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, _, err := loadConfigWithKubelet(configPath, f.Changed("config"), kubeletConfig)
		if err != nil {
			return err
		}
		return runFetch(cfg, configPath, cache, once, newReporter(cmd.ErrOrStderr(), false))
	}
	return cmd
}

func runFetch(cfg Config, configPath, cache string, once bool, report *reporter) error {
	if cfg.ManifestURL == "" {
		report.Infof("no manifestURL in %s: nothing to fetch", configPath)
		return nil
	}
	interval, timeout := cfg.urlTiming()
	f := &fetcher{url: cfg.ManifestURL, headers: cfg.ManifestURLHeaders, dir: cache, report: report,
		client: &http.Client{Timeout: timeout}}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	for {
		err := f.fetch(ctx)
		if err != nil {
			report.Errorf("%v", err)
		}
		if once {
			if err != nil {
				return &exitError{exitFailure, errors.New("fetch failed; the last good set is kept")}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// fetcher fetches one manifest URL into a cache directory.
type fetcher struct {
	url     string
	headers map[string][]string
	dir     string
	client  *http.Client
	report  *reporter
}

// fetchState is what a fetch remembers for the next: the answer's ETag.
type fetchState struct {
	URL  string `json:"url"`
	ETag string `json:"etag,omitempty"`
}

func (f *fetcher) statePath() string { return filepath.Join(f.dir, ".state.json") }

// fetch gets the URL once. A good answer that differs from the cached one
// replaces it; anything else leaves the cache as it is and is an error.
func (f *fetcher) fetch(ctx context.Context) error {
	var st fetchState
	if b, err := os.ReadFile(f.statePath()); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	if st.URL != f.url {
		st = fetchState{URL: f.url} // another URL: its ETag means nothing
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return fmt.Errorf("manifestURL %s: %w", f.url, err)
	}
	for k, vs := range f.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	cached, cacheErr := os.ReadFile(filepath.Join(f.dir, urlManifest))
	if st.ETag != "" && cacheErr == nil {
		req.Header.Set("If-None-Match", st.ETag)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("manifestURL %s: %w; keeping the last good set", f.url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("manifestURL %s: HTTP %s; keeping the last good set", f.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, generator.MaxManifestSize+1))
	if err != nil {
		return fmt.Errorf("manifestURL %s: reading the answer: %w; keeping the last good set", f.url, err)
	}
	if len(body) > generator.MaxManifestSize {
		return fmt.Errorf("manifestURL %s: answer larger than %d bytes; keeping the last good set", f.url, generator.MaxManifestSize)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte(emptySet) // as the kubelet: an empty answer removes the URL's pods
	}
	if _, err := generator.DecodeManifest(f.url, body); err != nil {
		return fmt.Errorf("manifestURL %s: the answer is not usable, keeping the last good set:\n%w", f.url, err)
	}
	if cacheErr == nil && bytes.Equal(cached, body) {
		return f.writeState(fetchState{URL: f.url, ETag: resp.Header.Get("ETag")})
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return err
	}
	// Root only: the answer may hold Secrets.
	if err := atomicfile.WriteSync(filepath.Join(f.dir, urlManifest), body, 0o600); err != nil {
		return err
	}
	f.report.Infof("manifestURL %s: new set of manifests (%d bytes)", f.url, len(body))
	return f.writeState(fetchState{URL: f.url, ETag: resp.Header.Get("ETag")})
}

func (f *fetcher) writeState(st fetchState) error {
	b, _ := json.Marshal(st)
	if err := atomicfile.WriteSync(f.statePath(), b, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
