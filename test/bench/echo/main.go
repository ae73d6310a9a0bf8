// Command echo is the server behind the Services benchmarks (make bench):
// it answers each line a TCP client sends with the same line, from a
// goroutine per connection and with no process started per connection, so
// that a request's time is the network path's (the rules' or the direct
// one), not a fork's. Built static, it runs in a busybox pod from a
// hostPath mount.
//
//	echo [ADDR]   (default :9000)
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := ":9000"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			return nil // closed at SIGTERM
		}
		go serve(c)
	}
}

func serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		if _, err := c.Write(line); err != nil {
			return
		}
	}
}
