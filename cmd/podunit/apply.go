package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/atomicfile"
)

// manifestDirFlags find the manifest directory as sync does.
type manifestDirFlags struct {
	configPath, dir string
}

func (m *manifestDirFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&m.configPath, "config", DefaultConfigPath, "configuration file")
	cmd.Flags().StringVar(&m.dir, "manifest-dir", "", "manifest directory (default: manifestDir from the configuration, /etc/podunit/manifests)")
}

// dirs are the manifest directories, the one apply writes to first.
func (m *manifestDirFlags) dirs(cmd *cobra.Command) ([]string, error) {
	cfg, _, err := loadConfigWithKubelet(m.configPath, cmd.Flags().Changed("config"), "")
	if err != nil {
		return nil, err
	}
	if m.dir != "" {
		cfg.ManifestDir = m.dir
	}
	dirs := append([]string{cfg.ManifestDir}, cfg.ManifestDirs...)
	for i := range dirs {
		if dirs[i], err = filepath.Abs(dirs[i]); err != nil {
			return nil, err
		}
	}
	return dirs, nil
}

func newApplyCommand() *cobra.Command {
	var (
		md   manifestDirFlags
		file string
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR",
		Short: "validate a manifest, then put it into the manifest directory",
		Long: `Validates a manifest as sync does and, only when it is valid, writes it
atomically into the manifest directory as FILE's base name (or, from
standard input, as NAME.yaml after its first object), where podunit.path
picks it up at once. An invalid manifest is refused with its errors and
nothing running is touched. A pod defined by another file of the directory
is refused too: apply that file, or delete it first. A directory DIR is read
as sync reads a manifest directory (its .yaml, .yml and .json files, not
recursively, editors' backups and hidden files skipped), as kubectl does:
each file is written by its name, and only when every one is valid; the
files without pods (ConfigMaps, Secrets, claims, Services) first.`,
		Example: "  podunit apply -f web.yaml\n  podunit apply -f ./app/\n  cat web.yaml | podunit apply -f -",
		Args:    exactArgs(0, "no arguments (the manifest is -f FILE)"),
	}
	md.register(cmd)
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the manifest file or directory, or - for standard input")
	cmd.MarkFlagRequired("filename")
	cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		dirs, err := md.dirs(cmd)
		if err != nil {
			return err
		}
		files, _, err := manifestArgs([]string{file})
		if err != nil {
			return err
		}
		return applyFiles(cmd.OutOrStdout(), dirs, files)
	}
	return cmd
}

// applied is one manifest to write into the manifest directory.
type applied struct {
	target string
	data   []byte
	m      *generator.Manifest
}

// applyFiles validates every file and, only when all are valid and none
// defines a pod that another file does, writes each into the first
// manifest directory, saying what it did: nothing is written otherwise.
func applyFiles(out io.Writer, dirs []string, files []string) error {
	var (
		todo []applied
		errs []error
	)
	for _, file := range files {
		data, err := readManifest(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m, err := generator.DecodeManifest(file, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		name := filepath.Base(file)
		if file == "-" {
			if name = firstObjectName(m); name == "" {
				errs = append(errs, errors.New("-: no object to apply"))
				continue
			}
			name += ".yaml"
		}
		if !slices.ContainsFunc([]string{".yaml", ".yml", ".json"}, func(ext string) bool { return strings.HasSuffix(name, ext) }) {
			name += ".yaml"
		}
		todo = append(todo, applied{filepath.Join(dirs[0], name), data, m})
	}
	if len(errs) > 0 {
		return &exitError{exitInvalid, errors.Join(errs...)}
	}
	owner := map[string]string{} // pod key → the given file's target
	for _, a := range todo {
		for _, p := range a.m.Pods {
			if first, dup := owner[p.Key()]; dup {
				return &exitError{exitFailure, fmt.Errorf("pod %s is defined twice, for %s and %s: nothing applied", p.Key(), first, a.target)}
			}
			owner[p.Key()] = a.target
		}
		if err := checkNoOtherDefinition(dirs, a.target, a.m); err != nil {
			return err
		}
	}
	// Files without pods first (ConfigMaps, Secrets, claims, Services):
	// each file is written whole, in one rename, but a sync may run
	// between two files, and a pod it then finds has what it uses.
	slices.SortStableFunc(todo, func(a, b applied) int {
		return cmp.Compare(min(len(a.m.Pods), 1), min(len(b.m.Pods), 1))
	})
	for _, a := range todo {
		verb, err := writeManifest(a.target, a.data, len(a.m.Secrets) > 0)
		if err != nil {
			return err
		}
		for _, p := range a.m.Pods {
			fmt.Fprintf(out, "pod/%s %s (%s)\n", p.Spec.Name, verb, a.target)
		}
		if len(a.m.Pods) == 0 {
			fmt.Fprintf(out, "%s %s\n", a.target, verb)
		}
	}
	return nil
}

// readManifest reads a manifest file, or standard input for "-".
func readManifest(file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, generator.MaxManifestSize+1))
	}
	return generator.ReadManifest(file)
}

func firstObjectName(m *generator.Manifest) string {
	switch {
	case len(m.Pods) > 0:
		return m.Pods[0].Spec.Name
	case len(m.ConfigMaps) > 0:
		return m.ConfigMaps[0].Name
	case len(m.Secrets) > 0:
		return m.Secrets[0].Name
	case len(m.Claims) > 0:
		return m.Claims[0].Name
	}
	return ""
}

// checkNoOtherDefinition refuses a manifest whose pods another file of the
// manifest directories defines: the first by path would win, and the pod
// would not be the one applied.
func checkNoOtherDefinition(dirs []string, target string, m *generator.Manifest) error {
	set, err := readManifestDirs(dirs)
	if err != nil {
		return err
	}
	for _, p := range m.Pods {
		for _, q := range set.Pods {
			if q.Key() == p.Key() && q.Source != target {
				return &exitError{exitFailure, fmt.Errorf("pod %s is defined in %s: apply that file, or delete it first (podunit delete -f %s)", p.Key(), q.Source, q.Source)}
			}
		}
	}
	return nil
}

func readManifestDirs(dirs []string) (*generator.Set, error) {
	var sources []generator.Source
	for _, d := range dirs {
		sources = append(sources, generator.Source{Dir: d})
	}
	return generator.ReadSources(sources...)
}

// writeManifest replaces target with data atomically (a hidden temporary
// file, which sync skips, renamed over it), and says what it did. A
// manifest holding a Secret is readable by root only, also when it is
// unchanged (an earlier write may have left it readable by all).
func writeManifest(target string, data []byte, secret bool) (string, error) {
	old, err := os.ReadFile(target)
	switch {
	case err == nil && bytes.Equal(old, data):
		if secret {
			if st, err := os.Stat(target); err != nil {
				return "", err
			} else if st.Mode().Perm()&0o077 != 0 {
				if err := os.Chmod(target, 0o600); err != nil {
					return "", err
				}
			}
		}
		return "unchanged", nil
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	default:
		return "", err
	}
	mode := os.FileMode(0o644)
	if secret {
		mode = 0o600
	}
	if err := atomicfile.WriteSync(target, data, mode); err != nil {
		return "", err
	}
	if old == nil {
		return "created", nil
	}
	return "configured", nil
}

func newDeleteCommand() *cobra.Command {
	var (
		md        manifestDirFlags
		pf        podFlags
		file      string
		wait      bool
		waitLimit time.Duration
	)
	cmd := &cobra.Command{
		Use:   "delete NAME | -f FILE",
		Short: "remove a pod's manifest from the manifest directory",
		Long: `Removes the manifest file that defines pod NAME (or, with -f, the file of
the manifest directory that FILE names or whose pods FILE defines), so that
sync stops the pod: preStop hooks, then its grace period. With --wait (the
default) it returns once the pod is gone. A file that defines other objects
too is refused: edit it instead. Pods from manifestURL are deleted there.`,
		Example: "  podunit delete web\n  podunit delete -f web.yaml",
		Args: func(cmd *cobra.Command, args []string) error {
			if (file == "") == (len(args) == 0) || len(args) > 1 {
				return usageError(cmd, "podunit delete takes a pod name or -f FILE")
			}
			return nil
		},
	}
	md.register(cmd)
	pf.register(cmd)
	cmd.ValidArgsFunction = pf.completePods(1)
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the manifest file (in the manifest directory, or one defining the same pods)")
	cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until the pod is gone")
	cmd.Flags().DurationVar(&waitLimit, "timeout", 5*time.Minute, "how long to wait")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		dirs, err := md.dirs(cmd)
		if err != nil {
			return err
		}
		set, err := readManifestDirs(dirs)
		if err != nil {
			return err
		}
		var keys []string
		if file != "" {
			keys, err = podKeysOf(file)
		} else {
			keys = []string{pf.namespace + "/" + args[0]}
		}
		if err != nil {
			return err
		}
		files, err := definingFiles(set, dirs, file, keys)
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := os.Remove(f); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", f)
		}
		for _, k := range keys {
			ns, name, _ := strings.Cut(k, "/")
			if wait {
				if err := waitGone(pf.socket, ns, name, waitLimit); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pod %q deleted\n", name)
		}
		return nil
	}
	return cmd
}

// podKeysOf are the pods a manifest file defines.
func podKeysOf(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m, err := generator.DecodeManifest(file, data)
	if err != nil {
		return nil, &exitError{exitInvalid, err}
	}
	var keys []string
	for _, p := range m.Pods {
		keys = append(keys, p.Key())
	}
	return keys, nil
}

// definingFiles are the manifest files to remove for the pods keys: each
// must be in a manifest directory and define nothing but those pods.
func definingFiles(set *generator.Set, dirs []string, file string, keys []string) ([]string, error) {
	byFile := map[string][]string{}
	for _, p := range set.Pods {
		byFile[p.Source] = append(byFile[p.Source], p.Key())
	}
	var files []string
	if abs, err := filepath.Abs(file); file != "" && err == nil && slices.Contains(dirs, filepath.Dir(abs)) {
		if _, err := os.Stat(abs); err != nil {
			return nil, err
		}
		return []string{abs}, nil // the file itself, whatever it defines
	}
	if len(keys) == 0 {
		return nil, &exitError{exitFailure, fmt.Errorf("%s defines no pod, and is not in %s", file, strings.Join(dirs, ", "))}
	}
	for _, k := range keys {
		found := ""
		for f, ks := range byFile {
			if slices.Contains(ks, k) {
				found = f
			}
		}
		switch {
		case found == "":
			return nil, &exitError{exitFailure, fmt.Errorf("no manifest in %s defines pod %s (podunit get pods -A -o wide shows where each pod comes from)", strings.Join(dirs, ", "), k)}
		case !inDirs(found, dirs):
			return nil, &exitError{exitFailure, fmt.Errorf("pod %s comes from %s: remove it there", k, found)}
		}
		for _, other := range byFile[found] {
			if !slices.Contains(keys, other) {
				return nil, &exitError{exitFailure, fmt.Errorf("%s defines pod %s too: edit the file instead", found, other)}
			}
		}
		if m, err := manifestObjects(found); err == nil && m > len(byFile[found]) {
			return nil, &exitError{exitFailure, fmt.Errorf("%s defines other objects (ConfigMaps, Secrets, claims) too: edit the file instead", found)}
		}
		if !slices.Contains(files, found) {
			files = append(files, found)
		}
	}
	return files, nil
}

func inDirs(path string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(path, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// manifestObjects counts the objects of a manifest file.
func manifestObjects(file string) (int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	m, err := generator.DecodeManifest(file, data)
	if err != nil {
		return 0, err
	}
	return len(m.Pods) + len(m.ConfigMaps) + len(m.Secrets) + len(m.Claims), nil
}

// waitGone polls the status API until pod namespace/name is gone.
func waitGone(socket, namespace, name string, limit time.Duration) error {
	c := newStatusClient(socket)
	deadline := time.Now().Add(limit)
	for {
		pods, err := c.pods()
		if err != nil {
			return err
		}
		gone := !slices.ContainsFunc(pods, func(p corev1.Pod) bool { return p.Namespace == namespace && p.Name == name })
		if gone {
			return nil
		}
		if time.Now().After(deadline) {
			return &exitError{exitFailure, fmt.Errorf("pod %s/%s still runs after %s (journalctl -u podunit-sync)", namespace, name, limit)}
		}
		time.Sleep(500 * time.Millisecond)
	}
}
