// Command crifloor brings one pod up with raw CRI calls and the configs
// podshim would make for it (package crifloor), and says how long until
// its first hostPort answered HTTP: the floor of the VM tier's
// side-by-side benchmark (test/vm/bench.sh), run inside the guest.
//
//	crifloor -f web.yaml            up; prints "SECONDS SANDBOX-ID"
//	crifloor -f web.yaml -rm ID     stops and removes it
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/test/crifloor"
)

func main() {
	file := flag.String("f", "", "the pod's manifest")
	remove := flag.String("rm", "", "remove the pod of this sandbox ID")
	endpoint := flag.String("cri-endpoint", criclient.DefaultEndpoint, "CRI runtime endpoint")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()
	if err := run(*file, *remove, *endpoint, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "crifloor:", err)
		os.Exit(1)
	}
}

func run(file, remove, endpoint string, timeout time.Duration) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	pods, err := generator.Decode(file, b)
	if err != nil {
		return err
	}
	spec := pods[0].Spec
	c := spec.Spec.Containers[0]
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rt, err := criclient.New(endpoint)
	if err != nil {
		return err
	}
	defer rt.Close()
	if remove != "" {
		(&crifloor.Pod{Spec: spec, Sandbox: remove}).Remove(ctx, rt)
		return nil
	}
	if len(c.Ports) == 0 || c.Ports[0].HostPort == 0 {
		return errors.New("the pod's first container needs a hostPort to be asked")
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", c.Ports[0].HostPort)
	sb, cc, err := crifloor.Configs(spec, c.Image)
	if err != nil {
		return err
	}
	start := time.Now()
	p, err := crifloor.Start(ctx, rt, spec, sb, cc, c.Image)
	if err != nil {
		if p != nil {
			p.Remove(context.Background(), rt)
		}
		return err
	}
	client := &http.Client{Timeout: time.Second}
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			break
		}
		if ctx.Err() != nil {
			p.Remove(context.Background(), rt)
			return fmt.Errorf("%s did not answer within %s", url, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("%.3f %s\n", time.Since(start).Seconds(), p.Sandbox)
	return nil
}
