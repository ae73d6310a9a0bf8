package cni

import (
	"context"
	"errors"
	"fmt"
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

// The pods' subnets come from the IPAM configuration, as the packaged
// network and older single-subnet files give them; an IPAM that leases
// addresses names none.
func TestSubnets(t *testing.T) {
	n, err := Load("../packaging/cni")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(n.Subnets) != "[10.88.0.0/16]" {
		t.Errorf("the packaged network's subnets: %v", n.Subnets)
	}
	for conf, want := range map[string]string{
		`{"cniVersion":"0.4.0","name":"old","type":"bridge","ipam":{"type":"host-local","subnet":"10.22.1.0/24"}}`:                                                                               "[10.22.1.0/24]",
		`{"cniVersion":"1.0.0","name":"two","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/16"},{"subnet":"10.2.0.5/16"}],[{"subnet":"fd00::/64"}]]}}]}`: "[10.1.0.0/16 10.2.0.0/16 fd00::/64]",
		`{"cniVersion":"1.0.0","name":"dhcp","plugins":[{"type":"macvlan","ipam":{"type":"dhcp"}}]}`:                                                                                             "[]",
	} {
		dir := t.TempDir()
		ext := ".conflist"
		if !strings.Contains(conf, "plugins") {
			ext = ".conf"
		}
		if err := os.WriteFile(filepath.Join(dir, "10-net"+ext), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(n.Subnets); got != want {
			t.Errorf("%s: subnets %s, want %s", conf, got, want)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "10-bad.conflist"), []byte(`{"cniVersion":"1.0.0","name":"bad","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.0.0"}]]}}]}`), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "10-bad.conflist") || !strings.Contains(err.Error(), `"10.1.0.0"`) {
		t.Errorf("a subnet without a length: %v", err)
	}
}
