package quadlet

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

// Option is one assignment of a unit file, after its drop-ins: Section
// and Key as written, Value with continuation lines joined, From the file
// that set it (the unit or one of its drop-ins).
type Option struct {
	Section, Key, Value, From string
}

// Unit is a Quadlet .kube unit as Quadlet reads it: the unit file's
// assignments, then those of its drop-ins in order.
type Unit struct {
	// Path is the unit file's absolute path; relative Yaml= and ConfigMap=
	// paths are resolved against its directory.
	Path    string
	Options []Option
}

// Name is the unit's file name, "web.kube".
func (u *Unit) Name() string { return filepath.Base(u.Path) }

// File is a file's path and content.
type File struct {
	Path string
	Data []byte
}

// ParseUnit reads a .kube unit and its drop-ins (in the order DropIns
// gives) as systemd and Quadlet read unit files: sections, comments
// (# and ;), continuation lines (a backslash at the end of a line joins the
// next with a space), repeated keys kept in order.
func ParseUnit(path string, data []byte, dropIns []File) (*Unit, error) {
	u := &Unit{Path: path}
	for _, f := range append([]File{{path, data}}, dropIns...) {
		sections, err := unit.DeserializeSections(bytes.NewReader(f.Data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		for _, s := range sections {
			for _, e := range s.Entries {
				if e.Name == "" {
					return nil, fmt.Errorf("%s: [%s]: an assignment without a key", f.Path, s.Section)
				}
				u.Options = append(u.Options, Option{Section: s.Section, Key: e.Name, Value: joinContinuations(e.Value), From: f.Path})
			}
		}
	}
	return u, nil
}

// joinContinuations turns go-systemd's raw continued value ("a \\\nb")
// into systemd's ("a b"): each backslash-newline is a space, and comment
// lines inside a continued value are skipped, as systemd skips them.
func joinContinuations(v string) string {
	if !strings.Contains(v, "\\\n") {
		return strings.TrimSpace(v)
	}
	parts := strings.Split(strings.TrimSuffix(v, "\n"), "\\\n")
	var kept []string
	for i, p := range parts {
		t := strings.TrimSpace(p)
		if i > 0 && (strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";")) {
			continue
		}
		if i > 0 {
			p = strings.TrimLeft(p, " \t")
		}
		kept = append(kept, strings.TrimRight(p, " \t"))
	}
	return strings.TrimSpace(strings.Join(kept, " "))
}

// DropInDirs are the directories, beside the unit file, whose *.conf files
// Quadlet applies to unit NAME.kube, broadest first: kube.d, then each
// prefix of a dashed name (foo-.kube.d, foo-bar-.kube.d for
// foo-bar-baz.kube), then NAME.kube.d.
func DropInDirs(name string) []string {
	dirs := []string{"kube.d"}
	base := strings.TrimSuffix(name, ".kube")
	for i := range len(base) {
		if base[i] == '-' && i > 0 {
			dirs = append(dirs, base[:i+1]+".kube.d")
		}
	}
	return append(dirs, name+".d")
}

// DropIns picks the drop-in files that apply to unit name, as Quadlet
// picks them: *.conf files of the directories DropInDirs names, in each of
// bases (the directories searched for units, in order); of files of one
// name, the one of the more specific directory wins, then the one of the
// earlier base. They apply in the order of their names. listing maps each
// directory's path to the names of the files in it.
func DropIns(name string, bases []string, listing map[string][]string) []string {
	chosen := map[string]string{}
	dirs := DropInDirs(name)
	for i := len(dirs) - 1; i >= 0; i-- {
		for _, base := range bases {
			dir := filepath.Join(base, dirs[i])
			for _, f := range listing[dir] {
				if _, ok := chosen[f]; !ok && strings.HasSuffix(f, ".conf") {
					chosen[f] = filepath.Join(dir, f)
				}
			}
		}
	}
	names := make([]string, 0, len(chosen))
	for n := range chosen {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = chosen[n]
	}
	return out
}

// values are the values of a key in a section, in order; an empty
// assignment clears what came before, as in systemd.
func (u *Unit) values(section, key string) []Option {
	var out []Option
	for _, o := range u.Options {
		if o.Section != section || o.Key != key {
			continue
		}
		if o.Value == "" {
			out = out[:0]
			continue
		}
		out = append(out, o)
	}
	return out
}

// last is the last value of a single-valued key.
func (u *Unit) last(section, key string) (Option, bool) {
	vs := u.values(section, key)
	if len(vs) == 0 {
		return Option{}, false
	}
	return vs[len(vs)-1], true
}

// splitWords splits a value into words as systemd does for lists: on
// whitespace, with "double" and 'single' quotes grouping, and C escapes
// (\", \\, \t, \n, \s, \x41) inside and outside quotes.
func splitWords(v string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote byte
	)
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			if i+1 >= len(v) {
				return nil, fmt.Errorf("%q: a backslash at the end", v)
			}
			i++
			switch e := v[i]; e {
			case 'n':
				cur.WriteByte('\n')
			case 't':
				cur.WriteByte('\t')
			case 's':
				cur.WriteByte(' ')
			case 'x':
				if i+2 >= len(v) {
					return nil, fmt.Errorf("%q: \\x needs two hex digits", v)
				}
				var b byte
				if _, err := fmt.Sscanf(v[i+1:i+3], "%02x", &b); err != nil {
					return nil, fmt.Errorf("%q: \\x needs two hex digits", v)
				}
				cur.WriteByte(b)
				i += 2
			default:
				cur.WriteByte(e)
			}
			in = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unbalanced quotes", v)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// expandSpecifiers expands the systemd specifiers a system unit's value
// may hold and that mean the same on this machine under podunit: %% %n %N
// %p (from the Quadlet service's name), %h and %u (root), %t %S %C %L %E
// %T %V (the system manager's directories). It returns the specifiers it
// could not expand (%i, %H, %m, …), leaving them in the value.
func expandSpecifiers(v, service string) (string, []string) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	prefix := strings.TrimSuffix(service, ".service")
	if at := strings.Index(prefix, "@"); at >= 0 {
		prefix = prefix[:at]
	}
	known := map[byte]string{
		'%': "%", 'n': service, 'N': strings.TrimSuffix(service, ".service"), 'p': prefix,
		'h': "/root", 'u': "root", 'U': "0", 'g': "root", 'G': "0",
		't': "/run", 'S': "/var/lib", 'C': "/var/cache", 'L': "/var/log", 'E': "/etc",
		'T': "/tmp", 'V': "/var/tmp",
	}
	var (
		b       strings.Builder
		unknown []string
	)
	for i := 0; i < len(v); i++ {
		if v[i] != '%' || i+1 >= len(v) {
			b.WriteByte(v[i])
			continue
		}
		i++
		if r, ok := known[v[i]]; ok {
			b.WriteString(r)
			continue
		}
		unknown = append(unknown, "%"+string(v[i]))
		b.WriteByte('%')
		b.WriteByte(v[i])
	}
	return b.String(), unknown
}
