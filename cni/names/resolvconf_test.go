package names

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The upstreams are a resolv.conf's name servers; when it names
// systemd-resolved's stub, the servers resolved uses instead (the stub
// when that file is missing).
func TestUpstreams(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := write("plain", "# generated\nsearch example.org\nnameserver 192.0.2.53\n;nameserver 192.0.2.99\nnameserver fe80::1%eth0\nnameserver bogus\nnameserver\noptions edns0\n")
	stub := write("stub", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n")
	resolved := write("resolved", "nameserver 192.0.2.1\nnameserver 2001:db8::1\n")

	for _, c := range []struct {
		path, resolved string
		want           []string
	}{
		{plain, resolved, []string{"192.0.2.53:53", "[fe80::1%eth0]:53"}},
		{stub, resolved, []string{"192.0.2.1:53", "[2001:db8::1]:53"}},
		{stub, filepath.Join(dir, "missing"), []string{"127.0.0.53:53"}},
	} {
		got, err := upstreams(c.path, c.resolved)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s (resolved's %s): %q %v, want %q", filepath.Base(c.path), filepath.Base(c.resolved), got, err, c.want)
		}
	}
	if _, err := Upstreams(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing resolv.conf: no error")
	}
}
