package main

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/podunit/podunit/cni/names"
)

// The resolver's sockets go to systemd's store and come back to the next
// run: a question sent while the first run is gone (its sockets closed)
// waits in the stored socket and reaches the next run.
func TestResolverSocketsKeptAcrossARestart(t *testing.T) {
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	t.Setenv("NOTIFY_SOCKET", notify.LocalAddr().String())

	first, err := names.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := first.Packet[0].LocalAddr().(*net.UDPAddr).AddrPort()
	if err := storeSockets(first); err != nil {
		t.Fatal(err)
	}
	// What systemd received: two messages, a descriptor each.
	var stored []*os.File
	for _, want := range []string{"FDSTORE=1\nFDNAME=dns-udp", "FDSTORE=1\nFDNAME=dns-tcp"} {
		buf, oob := make([]byte, 512), make([]byte, 512)
		notify.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, oobn, _, _, err := notify.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != want {
			t.Errorf("notification %q, want %q", buf[:n], want)
		}
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			t.Fatalf("control messages %v %v", msgs, err)
		}
		fds, err := syscall.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			t.Fatalf("descriptors %v %v", fds, err)
		}
		// systemd passes them back named as they were stored.
		stored = append(stored, os.NewFile(uintptr(fds[0]), want[len("FDSTORE=1\nFDNAME="):]))
	}
	first.Close() // the first run is killed

	client, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Write([]byte("asked while the resolver was away")); err != nil {
		t.Fatal(err)
	}

	next := inheritedSockets(stored, addr)
	if next == nil {
		t.Fatal("the next run did not take the stored sockets")
	}
	defer next.Close()
	buf := make([]byte, 512)
	next.Packet[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := next.Packet[0].ReadFrom(buf)
	if err != nil || string(buf[:n]) != "asked while the resolver was away" {
		t.Errorf("the next run read %q, %v", buf[:n], err)
	}
	if got := next.Stream[0].Addr().(*net.TCPAddr).AddrPort(); got != addr {
		t.Errorf("TCP on %s, want %s", got, addr)
	}
}

// Stored sockets of another address (clusterDNS changed in config.yaml),
// or only one of the two, are not used, and are closed.
func TestInheritedSocketsOfAnotherAddress(t *testing.T) {
	l, err := names.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Copies of the sockets named as systemd names them: each a
	// descriptor of its own (a second *os.File of the same descriptor
	// would close it again from its finalizer, by then another file's:
	// another test's writes failed with "bad file descriptor").
	named := func(f *os.File, err error, name string) *os.File {
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd, err := syscall.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		return os.NewFile(uintptr(fd), name)
	}
	files := func() []*os.File {
		u, err := l.Packet[0].(*net.UDPConn).File()
		udp := named(u, err, fdNameUDP)
		s, err := l.Stream[0].(*net.TCPListener).File()
		return []*os.File{udp, named(s, err, fdNameTCP)}
	}
	addr := l.Packet[0].LocalAddr().(*net.UDPAddr).AddrPort()
	if got := inheritedSockets(files(), netip.AddrPortFrom(addr.Addr(), addr.Port()+1)); got != nil {
		t.Errorf("sockets of %s taken for another port", addr)
	}
	if got := inheritedSockets(files()[:1], addr); got != nil {
		t.Error("a UDP socket alone taken")
	}
	if got := inheritedSockets(nil, addr); got != nil {
		t.Error("sockets from nothing")
	}
}

// Not run by systemd: nothing to store, no error.
func TestStoreSocketsWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	l, err := names.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := storeSockets(l); err != nil {
		t.Error(err)
	}
}
