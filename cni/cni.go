// Package cni finds and checks the CNI network configuration a CRI runtime
// gives podunit's pods, with the reference library (libcni) that the
// runtimes use themselves: the same file is chosen, and the same checks of
// its plugins are made, before a pod fails on them.
package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

// DefaultConfDir is where containerd and CRI-O read network configurations.
const DefaultConfDir = "/etc/cni/net.d"

// DefaultBinDirs are where plugins are installed: Debian's and Ubuntu's
// containernetworking-plugins package, then the upstream tarball's place.
var DefaultBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Network is the configuration list a runtime would use.
type Network struct {
	File       string
	Name       string
	CNIVersion string
	Plugins    []string // plugin types, in order
	// Subnets are the pods' address ranges, as the plugins' IPAM
	// configuration gives them (host-local's ranges or subnet); empty when
	// no plugin names one (an IPAM that leases them, as dhcp does).
	Subnets []netip.Prefix
	list    *libcni.NetworkConfigList
}

// ErrNoNetwork means the configuration directory holds no usable network.
var ErrNoNetwork = errors.New("no CNI network configuration")

// Load returns the network a runtime uses: as containerd and CRI-O do, the
// first configuration file by name (.conf, .conflist or .json) in dir.
func Load(dir string) (*Network, error) {
	files, err := libcni.ConfFiles(dir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoNetwork, dir)
	}
	file := files[0]
	var list *libcni.NetworkConfigList
	if filepath.Ext(file) == ".conflist" {
		list, err = libcni.ConfListFromFile(file)
	} else {
		var conf *libcni.PluginConfig
		if conf, err = libcni.ConfFromFile(file); err == nil {
			list, err = libcni.ConfListFromConf(conf)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	n := &Network{File: file, Name: list.Name, CNIVersion: list.CNIVersion, list: list}
	for _, p := range list.Plugins {
		n.Plugins = append(n.Plugins, p.Network.Type)
		subnets, err := ipamSubnets(p.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: plugin %s: %w", file, p.Network.Type, err)
		}
		n.Subnets = append(n.Subnets, subnets...)
	}
	return n, nil
}

// ipamSubnets are the subnets a plugin's configuration gives its IPAM
// plugin: host-local's (and static-range IPAMs') ranges, or the older
// single subnet.
func ipamSubnets(conf []byte) ([]netip.Prefix, error) {
	var c struct {
		IPAM struct {
			Subnet string `json:"subnet"`
			Ranges [][]struct {
				Subnet string `json:"subnet"`
			} `json:"ranges"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(conf, &c); err != nil {
		return nil, err
	}
	given := []string{c.IPAM.Subnet}
	for _, set := range c.IPAM.Ranges {
		for _, r := range set {
			given = append(given, r.Subnet)
		}
	}
	var out []netip.Prefix
	for _, s := range given {
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("ipam subnet %q: %w", s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Check runs libcni's validation of the network against the plugins in
// binDirs: every plugin exists and supports the configuration's version.
func (n *Network) Check(ctx context.Context, binDirs []string) error {
	if _, err := libcni.NewCNIConfig(binDirs, nil).ValidateNetworkList(ctx, n.list); err != nil {
		return fmt.Errorf("%s: %w", n.File, err)
	}
	return nil
}

// BinDir is the first of dirs that holds the bridge plugin, or "".
func BinDir(dirs []string) string {
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, "bridge")); err == nil && fi.Mode().IsRegular() {
			return d
		}
	}
	return ""
}
