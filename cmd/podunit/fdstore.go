package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/podunit/podunit/cni/names"
)

// The resolver keeps its sockets in systemd's file descriptor store
// (podunit-dns.service has FileDescriptorStoreMax=): killed, crashed or
// restarted, `podunit dns` gets them back from systemd (LISTEN_FDS), and
// while it is away the kernel keeps the sockets open, so a pod's question
// waits in the socket's queue and is answered once the daemon is back,
// instead of being refused (ICMP port unreachable) for the restart delay.

// The names the resolver's sockets are stored under (FDNAME=).
const (
	fdNameUDP = "dns-udp"
	fdNameTCP = "dns-tcp"
)

// inheritedSockets are the resolver's sockets among files (systemd's,
// activation.Files) when both are there and bound to addr; nil otherwise.
// Every file it does not use is closed (a socket of an address the
// configuration no longer names).
func inheritedSockets(files []*os.File, addr netip.AddrPort) *names.Listeners {
	var (
		pc  net.PacketConn
		ln  net.Listener
		out []func() error
	)
	for _, f := range files {
		switch f.Name() {
		case fdNameUDP:
			if c, err := net.FilePacketConn(f); err == nil && pc == nil && boundTo(c.LocalAddr(), addr) {
				pc = c
			} else if err == nil {
				out = append(out, c.Close)
			}
		case fdNameTCP:
			if l, err := net.FileListener(f); err == nil && ln == nil && boundTo(l.Addr(), addr) {
				ln = l
			} else if err == nil {
				out = append(out, l.Close)
			}
		}
		f.Close() // net.File* made their own copy
	}
	if pc == nil || ln == nil {
		if pc != nil {
			out = append(out, pc.Close)
		}
		if ln != nil {
			out = append(out, ln.Close)
		}
		pc, ln = nil, nil
	}
	for _, c := range out {
		c()
	}
	if pc == nil {
		return nil
	}
	return &names.Listeners{Packet: []net.PacketConn{pc}, Stream: []net.Listener{ln}}
}

// boundTo tells whether a socket's address is addr.
func boundTo(a net.Addr, addr netip.AddrPort) bool {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		return false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) == addr
}

// storeSockets hands l's first UDP and TCP socket to systemd's file
// descriptor store, through the notification socket (NOTIFY_SOCKET; none:
// not run by systemd, nothing to do). Sockets systemd holds already are
// not stored twice (it compares them).
func storeSockets(l *names.Listeners) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" || len(l.Packet) == 0 || len(l.Stream) == 0 {
		return nil
	}
	var errs []error
	for _, s := range []struct {
		name string
		conn any
	}{{fdNameUDP, l.Packet[0]}, {fdNameTCP, l.Stream[0]}} {
		// The descriptor itself (File() would dup it and make the shared
		// socket blocking).
		c, ok := s.conn.(syscall.Conn)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: a %T has no descriptor", s.name, s.conn))
			continue
		}
		raw, err := c.SyscallConn()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			continue
		}
		var sent error
		if err := raw.Control(func(fd uintptr) { sent = notifyWithFD(sock, "FDSTORE=1\nFDNAME="+s.name, int(fd)) }); err != nil {
			sent = err
		}
		if sent != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, sent))
		}
	}
	return errors.Join(errs...)
}

// notifyWithFD sends state to the notification socket sock with the
// descriptor fd attached (SCM_RIGHTS), as sd_pid_notify_with_fds does.
func notifyWithFD(sock, state string, fd int) error {
	if sock[0] == '@' { // an abstract socket
		sock = "\x00" + sock[1:]
	}
	s, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(s)
	return syscall.Sendmsg(s, []byte(state), syscall.UnixRights(fd), &syscall.SockaddrUnix{Name: sock}, 0)
}
