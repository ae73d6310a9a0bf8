// Command leanshim measures what a pod shim written in Go would hold
// without gRPC and k8s.io/api: one HTTP/2 connection to the CRI socket
// (golang.org/x/net/http2, no grpc-go), a unary ListContainers call at an
// interval, nothing else. It is a measurement for docs/benchmarks.md (the
// steady state of podshim against the floor of any Go process doing a
// shim's calls), not part of podunit.
//
//	systemd-run --unit leanshim -p Environment=GOGC=50 leanshim
//	grep Private_Dirty /proc/$(systemctl show -p MainPID --value leanshim)/smaps_rollup
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"time"

	"golang.org/x/net/http2"

	"github.com/podunit/podunit/podshim/hugepages"
)

func main() {
	socket := flag.String("socket", "/run/containerd/containerd.sock", "CRI runtime socket")
	every := flag.Duration("every", 100*time.Millisecond, "time between ListContainers calls: the garbage that makes the collector run")
	flag.Parse()
	if err := hugepages.Off(); err != nil { // as podshim
		log.Print(err)
	}
	runtime.GOMAXPROCS(1) // as podshim

	client := &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *socket)
		},
	}}
	n, err := listContainers(client)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("ListContainers: %d bytes", n)
	for range time.Tick(*every) {
		if _, err := listContainers(client); err != nil {
			log.Print(err)
		}
	}
}

// listContainers makes a gRPC unary call by hand: a 5-byte frame header and
// an empty ListContainersRequest; it returns the answer's length.
func listContainers(client *http.Client) (int, error) {
	req, err := http.NewRequest("POST", "http://localhost/runtime.v1.RuntimeService/ListContainers", bytes.NewReader(make([]byte, 5)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("content-type", "application/grpc")
	req.Header.Set("te", "trailers")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if s := resp.Trailer.Get("grpc-status"); s != "0" || len(b) < 5 {
		return 0, fmt.Errorf("ListContainers: grpc-status %q, %d bytes", s, len(b))
	}
	return int(binary.BigEndian.Uint32(b[1:5])), nil
}
