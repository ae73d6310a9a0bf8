package cni

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadPicksTheFirstFileByName(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(dir); !errors.Is(err, ErrNoNetwork) {
		t.Fatalf("an empty directory: %v", err)
	}
	write("20-other.conflist", `{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"macvlan"}]}`)
	write("10-podunit.conflist", `{"cniVersion":"1.0.0","name":"podunit","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}`)
	n, err := Load(dir)
	if err != nil || n.Name != "podunit" || strings.Join(n.Plugins, ",") != "bridge,portmap" || n.CNIVersion != "1.0.0" {
		t.Fatalf("Load: %+v, %v", n, err)
	}
	// A missing plugin is what pods would fail on.
	if err := n.Check(context.Background(), []string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "bridge") {
		t.Errorf("Check without plugins: %v", err)
	}
	write("05-broken.conf", `{"name": `)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "05-broken.conf") {
		t.Errorf("a broken first file: %v", err)
	}
}

func TestCheckRunsThePlugins(t *testing.T) {
	bin := BinDir(DefaultBinDirs)
	if bin == "" {
		t.Skip("no CNI plugins installed (make deps installs Debian's containernetworking-plugins)")
	}
	n, err := Load("../packaging/cni")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Check(context.Background(), []string{bin}); err != nil {
		t.Errorf("podunit's own network against %s: %v", bin, err)
	}
}
