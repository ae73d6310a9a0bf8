//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/units"
)

// appsNamespace holds the apps of TestAppsReachEachOtherThroughServices:
// a namespace of their own, so that their names resolve through the
// pods' search path (apps.svc.cluster.local) and the Services of other
// tests' apps are none of their environment's.
const appsNamespace = "apps"

// apps are the shapes of kubernetes.io's examples, with busybox standing
// in for their images (an nc loop for mysql, httpd for wordpress and
// nginx), in one manifest so that the stories share their pods:
//
//   - "Deploying WordPress and MySQL with Persistent Volumes": the mysql
//     Deployment behind wordpress-mysql, its claim and Secret, the
//     wordpress Deployment finding it by name (WORDPRESS_DB_HOST) and
//     by its Service variables, behind a LoadBalancer Service; and a
//     NodePort Service beside it. The example's wordpress-mysql is
//     headless today (its older versions and most charts give it a
//     ClusterIP); it has one here so that it has variables: a headless
//     Service has none, as with the kubelet (nginx below is one);
//   - "StatefulSet Basics": web, two replicas, behind the headless nginx
//     Service with a named port, each with its claim; two more Services
//     over its pods, one with sessionAffinity: ClientIP;
//   - a client pod with hostname and subdomain (and its headless Service),
//     which does not want Service links;
//   - an ExternalName Service naming a host outside the cluster.
const apps = `apiVersion: v1
kind: Secret
metadata: {name: mysql-pass, namespace: apps}
stringData: {password: e2e-secret}
---
apiVersion: v1
kind: Service
metadata:
  name: wordpress-mysql
  namespace: apps
  labels: {app: wordpress}
spec:
  ports:
  - port: 3306
  selector: {app: wordpress, tier: mysql}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: mysql-pv-claim
  namespace: apps
  labels: {app: wordpress}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 20Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: wordpress-mysql
  namespace: apps
  labels: {app: wordpress}
spec:
  selector:
    matchLabels: {app: wordpress, tier: mysql}
  strategy: {type: Recreate}
  template:
    metadata:
      labels: {app: wordpress, tier: mysql}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - image: localhost/podunit/busybox:1.35
        name: mysql
        command: ["sh", "-c", "exec nc -ll -p 3306 -e sh -c 'echo mysql-$(hostname)'"]
        env:
        - name: MYSQL_ROOT_PASSWORD
          valueFrom: {secretKeyRef: {name: mysql-pass, key: password}}
        - name: MYSQL_DATABASE
          value: wordpress
        ports:
        - containerPort: 3306
          name: mysql
          # Also published on the node, as people do to reach their
          # database from the host: the runtime's hostPort rules
          # (CRI-O's own nftables table crio-hostports, containerd's CNI
          # portmap) work beside podunit's table.
          hostPort: 13306
        volumeMounts:
        - name: mysql-persistent-storage
          mountPath: /var/lib/mysql
      volumes:
      - name: mysql-persistent-storage
        persistentVolumeClaim: {claimName: mysql-pv-claim}
---
apiVersion: v1
kind: Service
metadata:
  name: wordpress
  namespace: apps
  labels: {app: wordpress}
spec:
  ports:
  - port: 80
  selector: {app: wordpress, tier: frontend}
  type: LoadBalancer
---
apiVersion: v1
kind: Service
metadata:
  name: wordpress-nodeport
  namespace: apps
spec:
  type: NodePort
  ports:
  - port: 8080
    targetPort: wordpress
    nodePort: 30080
  selector: {app: wordpress, tier: frontend}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: wp-pv-claim
  namespace: apps
  labels: {app: wordpress}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 20Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: wordpress
  namespace: apps
  labels: {app: wordpress}
spec:
  selector:
    matchLabels: {app: wordpress, tier: frontend}
  strategy: {type: Recreate}
  template:
    metadata:
      labels: {app: wordpress, tier: frontend}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - image: localhost/podunit/busybox:1.35
        name: wordpress
        env:
        - name: WORDPRESS_DB_HOST
          value: wordpress-mysql
        - name: WORDPRESS_DB_PASSWORD
          valueFrom: {secretKeyRef: {name: mysql-pass, key: password}}
        - name: WORDPRESS_DB_USER
          value: wordpress
        # The link variable of the Service wordpress is
        # WORDPRESS_PORT=tcp://<ClusterIP>:80; a variable the container
        # declares wins.
        - name: WORDPRESS_PORT
          value: "80"
        command: ["sh", "-c"]
        args:
        - |
          mkdir -p /var/www/html/cgi-bin && touch /var/www/html/ready
          cat >/var/www/html/cgi-bin/page <<EOF
          #!/bin/sh
          echo Content-Type: text/plain
          echo
          echo "wordpress-\$(hostname) by-name=\$(nc -w 2 $WORDPRESS_DB_HOST 3306 </dev/null) by-env=\$(nc -w 2 $WORDPRESS_MYSQL_SERVICE_HOST $WORDPRESS_MYSQL_SERVICE_PORT </dev/null)"
          EOF
          chmod +x /var/www/html/cgi-bin/page
          httpd -f -p 80 -h /var/www/html & trap 'kill $!; exit 0' TERM; wait
        ports:
        - containerPort: 80
          name: wordpress
        readinessProbe:
          httpGet: {path: /ready, port: 80}
          periodSeconds: 1
        volumeMounts:
        - name: wordpress-persistent-storage
          mountPath: /var/www/html
      volumes:
      - name: wordpress-persistent-storage
        persistentVolumeClaim: {claimName: wp-pv-claim}
---
apiVersion: v1
kind: Service
metadata:
  name: nginx
  namespace: apps
  labels: {app: nginx}
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector: {app: nginx}
---
apiVersion: v1
kind: Service
metadata: {name: web-sticky, namespace: apps}
spec:
  sessionAffinity: ClientIP
  ports:
  - port: 80
    targetPort: web
  selector: {app: nginx}
---
apiVersion: v1
kind: Service
metadata: {name: web-spread, namespace: apps}
spec:
  ports:
  - port: 80
    targetPort: web
  selector: {app: nginx}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: apps
spec:
  serviceName: nginx
  replicas: 2
  selector:
    matchLabels: {app: nginx}
  template:
    metadata:
      labels: {app: nginx}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: localhost/podunit/busybox:1.35
        command: ["sh", "-c"]
        args:
        - |
          hostname >/usr/share/nginx/html/index.html && touch /usr/share/nginx/html/ready
          httpd -f -p 80 -h /usr/share/nginx/html & trap 'kill $!; exit 0' TERM; wait
        ports:
        - containerPort: 80
          name: web
        readinessProbe:
          httpGet: {path: /ready, port: 80}
          periodSeconds: 1
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Service
metadata: {name: clients, namespace: apps}
spec:
  clusterIP: None
  selector: {app: client}
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: apps
  labels: {app: client}
spec:
  hostname: client
  subdomain: clients
  enableServiceLinks: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
---
apiVersion: v1
kind: Service
metadata: {name: search-engine, namespace: apps}
spec:
  type: ExternalName
  externalName: upstream.podunit.test
`

// upstreamName is the name outside the cluster the ExternalName Service
// search-engine names; upstreamAddr is what the test's own resolver, the
// node's only upstream while the test runs, answers for it (an address of
// TEST-NET-1 that no traffic is sent to).
const (
	upstreamName = "upstream.podunit.test."
	upstreamAddr = "192.0.2.77"
)

// User stories (#24), with the apps' real shapes, sharing their pods:
//
//   - "I copy wordpress + mysql from kubernetes.io. WordPress finds its
//     database by name and by the Service variables, and answers on port
//     80 of my machine";
//   - "my NodePort answers on the node and from another machine";
//   - "a pod reaches itself through its own Service";
//   - "my StatefulSet's pods are web-0.nginx and web-1.nginx, the headless
//     name answers the ready ones, its named port has an SRV record, and
//     a pod's hostname and subdomain are its name";
//   - "an ExternalName Service is a CNAME to the outside name, which
//     resolves through my node's resolvers";
//   - "sessionAffinity: ClientIP keeps a client on one replica".
func TestAppsReachEachOtherThroughServices(t *testing.T) {
	writeManifest(t, "e2e-apps.yaml", apps)
	for _, name := range []string{"wordpress-mysql-0", "wordpress-0", "web-0", "web-1", "client"} {
		waitActive(t, appsNamespace, name)
	}
	t.Cleanup(func() { // the next test starts with none of these
		os.Remove(filepath.Join(manifestDir, "e2e-apps.yaml"))
		for _, name := range []string{"wordpress-mysql-0", "wordpress-0", "web-0", "web-1", "client"} {
			waitGone(t, units.ServiceName(appsNamespace, name))
		}
	})
	table, err := service.ReadTable(service.DefaultTablePath)
	if err != nil {
		t.Fatal(err)
	}
	clusterIP := func(name string) string {
		for _, s := range table.Services {
			if s.Namespace == appsNamespace && s.Name == name {
				return s.ClusterIP.String()
			}
		}
		t.Fatalf("no Service %s/%s in the node's table", appsNamespace, name)
		return ""
	}
	podIP := func(name string) string { return podState(t, appsNamespace, name).Status.PodIP }

	t.Run("wordpress finds mysql by name and by its variables, and answers on the node's port 80", func(t *testing.T) {
		mysql := "mysql-wordpress-mysql-0"
		want := fmt.Sprintf("wordpress-wordpress-0 by-name=%s by-env=%s", mysql, mysql)
		waitFor(t, "wordpress's page on 127.0.0.1:80", func() (bool, error) {
			page, err := httpGet("127.0.0.1:80", "/cgi-bin/page")
			return page == want, fmt.Errorf("%q, %v", page, err)
		})
		env := podEnv(t, "wordpress-0")
		ip := clusterIP("wordpress-mysql")
		for _, kv := range []string{
			"WORDPRESS_MYSQL_SERVICE_HOST=" + ip, "WORDPRESS_MYSQL_SERVICE_PORT=3306",
			"WORDPRESS_MYSQL_PORT=tcp://" + ip + ":3306", "WORDPRESS_MYSQL_PORT_3306_TCP=tcp://" + ip + ":3306",
			"WORDPRESS_MYSQL_PORT_3306_TCP_PROTO=tcp", "WORDPRESS_MYSQL_PORT_3306_TCP_PORT=3306", "WORDPRESS_MYSQL_PORT_3306_TCP_ADDR=" + ip,
			"WORDPRESS_SERVICE_HOST=" + clusterIP("wordpress"), "WORDPRESS_PORT=80", // declared: it wins
			"WORDPRESS_PORT_80_TCP=tcp://" + clusterIP("wordpress") + ":80",
			"WORDPRESS_NODEPORT_SERVICE_PORT=8080", "WEB_STICKY_SERVICE_HOST=" + clusterIP("web-sticky"),
		} {
			if !slices.Contains(env, kv) {
				t.Errorf("wordpress-0 has no %s", kv)
			}
		}
		for _, v := range env { // headless and ExternalName Services have none
			if strings.HasPrefix(v, "NGINX_") || strings.HasPrefix(v, "CLIENTS_") || strings.HasPrefix(v, "SEARCH_ENGINE_") {
				t.Errorf("wordpress-0 has %s", v)
			}
		}
		for _, v := range podEnv(t, "client") { // enableServiceLinks: false
			if strings.Contains(v, "_SERVICE_HOST=") || strings.Contains(v, "_PORT=tcp://") {
				t.Errorf("client (enableServiceLinks: false) has %s", v)
			}
		}
	})

	t.Run("the NodePort and the LoadBalancer answer on the node and from another machine", func(t *testing.T) {
		for _, addr := range []string{"127.0.0.1:30080", "10.88.0.1:30080", "10.88.0.1:80"} {
			waitFor(t, "wordpress on "+addr, func() (bool, error) {
				page, err := httpGet(addr, "/cgi-bin/page")
				return strings.HasPrefix(page, "wordpress-wordpress-0 "), fmt.Errorf("%q, %v", page, err)
			})
		}
		waitFor(t, "mysql's hostPort on "+hostPortAddr()+":13306", func() (bool, error) {
			out, err := exec.Command("busybox", "nc", "-w", "3", hostPortAddr(), "13306").CombinedOutput()
			return strings.TrimSpace(string(out)) == "mysql-wordpress-mysql-0", fmt.Errorf("%v: %s", err, out)
		})
		if onCRIO() {
			if out, _ := exec.Command("nft", "list", "tables").CombinedOutput(); !strings.Contains(string(out), "crio-hostports") ||
				!strings.Contains(string(out), "ip podunit") {
				t.Errorf("CRI-O's and podunit's tables are not both there:\n%s", out)
			}
		}
		run := outside(t)
		for _, port := range []string{"30080", "80"} {
			waitFor(t, "wordpress from another machine on 192.0.2.1:"+port, func() (bool, error) {
				out, err := run("busybox", "sh", "-c", "printf 'GET /cgi-bin/page HTTP/1.0\\r\\n\\r\\n' | nc -w 3 192.0.2.1 "+port)
				return strings.Contains(out, "wordpress-wordpress-0 by-name=mysql-"), fmt.Errorf("%v: %s", err, out)
			})
		}
	})

	t.Run("a pod reaches itself through its own Service", func(t *testing.T) {
		for _, url := range []string{"http://wordpress/cgi-bin/page", "http://" + clusterIP("wordpress-nodeport") + ":8080/cgi-bin/page"} {
			waitFor(t, "wordpress-0 through "+url, func() (bool, error) {
				// (busybox's wget -T crashes: timeout bounds it instead)
				out, err := podExec(t, "wordpress-0", "timeout", "5", "wget", "-q", "-O", "-", url)
				return strings.HasPrefix(out, "wordpress-wordpress-0 by-name=mysql-"), fmt.Errorf("%v: %s", err, out)
			})
		}
	})

	t.Run("sessionAffinity ClientIP keeps a client on one endpoint", func(t *testing.T) {
		hits := func(svc string) map[string]int {
			seen := map[string]int{}
			for range 20 {
				page, err := httpGet(clusterIP(svc)+":80", "/")
				if err != nil {
					t.Fatalf("%s: %v", svc, err)
				}
				seen[page]++
			}
			return seen
		}
		// Without affinity, 20 requests over two replicas all reach the
		// same one once in half a million runs.
		if seen := hits("web-spread"); len(seen) != 2 {
			t.Errorf("20 requests to web-spread reached %v: want both replicas", seen)
		}
		if seen := hits("web-sticky"); len(seen) != 1 {
			t.Errorf("20 requests from one client to web-sticky (ClientIP) reached %v: want one replica", seen)
		}
	})

	t.Run("a StatefulSet's pods, a headless Service and a pod's hostname and subdomain have their names", func(t *testing.T) {
		web0, web1, client := podIP("web-0"), podIP("web-1"), podIP("client")
		// Through the C library's search path (ndots:5), as an app connects.
		for _, pod := range []string{"web-0", "web-1"} {
			waitFor(t, pod+".nginx from a pod", func() (bool, error) {
				out, err := podExec(t, "client", "sh", "-c", "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 "+pod+".nginx 80")
				return strings.HasSuffix(strings.TrimSpace(out), "\n"+pod), fmt.Errorf("%v: %s", err, out)
			})
		}
		// busybox's nslookup walks the search path only for a name
		// without a dot: these are whole.
		for name, want := range map[string]string{"web-1.nginx.apps.svc.cluster.local": web1, "client.clients.apps.svc.cluster.local": client} {
			waitFor(t, name+" from a pod", func() (bool, error) {
				out, err := podExec(t, "client", "nslookup", name)
				return hasLine(out, "Address: "+want), fmt.Errorf("%v: %s", err, out)
			})
		}
		if got := lookup(t, "nginx.apps.svc.cluster.local.", dns.TypeA); !slices.Equal(got, sorted(web0, web1)) {
			t.Errorf("nginx: %v, want the two replicas' %s %s", got, web0, web1)
		}
		srv := lookup(t, "_web._tcp.nginx.apps.svc.cluster.local.", dns.TypeSRV)
		if want := []string{"80 web-0.nginx.apps.svc.cluster.local.", "80 web-1.nginx.apps.svc.cluster.local."}; !slices.Equal(srv, want) {
			t.Errorf("SRV of the named port web: %v, want %v", srv, want)
		}

		// web-1 unready: the headless name answers web-0 alone, and web-1
		// again once it is ready.
		if out, err := podExec(t, "web-1", "rm", "/usr/share/nginx/html/ready"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		waitFor(t, "nginx without web-1", func() (bool, error) {
			got := lookup(t, "nginx.apps.svc.cluster.local.", dns.TypeA)
			return slices.Equal(got, []string{web0}), fmt.Errorf("%v", got)
		})
		if out, err := podExec(t, "web-1", "touch", "/usr/share/nginx/html/ready"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		waitFor(t, "nginx with web-1 again", func() (bool, error) {
			got := lookup(t, "nginx.apps.svc.cluster.local.", dns.TypeA)
			return slices.Equal(got, sorted(web0, web1)), fmt.Errorf("%v", got)
		})
	})

	t.Run("an ExternalName is a CNAME to a name the node's resolvers answer", func(t *testing.T) {
		queries := serveUpstream(t)
		got := lookup(t, "search-engine.apps.svc.cluster.local.", dns.TypeA)
		if want := sorted("CNAME "+upstreamName, upstreamAddr); !slices.Equal(got, want) {
			t.Errorf("search-engine: %v, want %v", got, want)
		}
		for _, name := range []string{"search-engine", strings.TrimSuffix(upstreamName, ".")} {
			waitFor(t, name+" from a pod", func() (bool, error) {
				out, err := podExec(t, "client", "nslookup", name)
				return hasLine(out, "Address: "+upstreamAddr), fmt.Errorf("%v: %s", err, out)
			})
		}
		if n := queries(); n == 0 {
			t.Errorf("the node's resolver was never asked for %s", upstreamName)
		}
	})
}

// hasLine tells whether out has the line line, spaces around it aside.
func hasLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// podExec runs a command in a pod of appsNamespace.
func podExec(t *testing.T, pod string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(podunitBin, append([]string{"exec", "-n", appsNamespace, pod, "--"}, args...)...).CombinedOutput()
	return string(out), err
}

// podEnv is the environment of a pod's first container.
func podEnv(t *testing.T, pod string) []string {
	t.Helper()
	out, err := podExec(t, pod, "env")
	if err != nil {
		t.Fatalf("env in %s: %v\n%s", pod, err, out)
	}
	return strings.Split(strings.TrimSpace(out), "\n")
}

// lookup asks the node's cluster DNS (clusterDNS, 10.96.0.10), as the
// node itself may, and returns the answer's records, sorted: addresses
// as they are, "CNAME target", SRV as "port target".
func lookup(t *testing.T, name string, qtype uint16) []string {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	c := &dns.Client{Timeout: 3 * time.Second}
	var r *dns.Msg
	var err error
	for range 3 {
		if r, _, err = c.Exchange(m, "10.96.0.10:53"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.CNAME:
			out = append(out, "CNAME "+rr.Target)
		case *dns.SRV:
			out = append(out, fmt.Sprintf("%d %s", rr.Port, rr.Target))
		}
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// serveUpstream makes a resolver of the test's own the node's only one
// while the test runs: it answers upstreamName with upstreamAddr on
// 127.0.0.1:53 of the test bed (its own network namespace), and
// podunit-dns.service is restarted to forward to it. It returns how many
// questions for upstreamName it was asked. Everything is put back when
// the test ends.
func serveUpstream(t *testing.T) (queries func() int) {
	t.Helper()
	asked := make(chan struct{}, 1000)
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		q := req.Question[0]
		switch {
		case strings.EqualFold(q.Name, upstreamName):
			select {
			case asked <- struct{}{}:
			default:
			}
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
					A: net.ParseIP(upstreamAddr)})
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{Addr: "127.0.0.1:53", Net: "udp", Handler: mux}
	started := make(chan error, 1)
	srv.NotifyStartedFunc = func() { started <- nil }
	go func() { started <- srv.ListenAndServe() }()
	if err := <-started; err != nil {
		t.Fatalf("the test's resolver: %v", err)
	}
	t.Cleanup(func() { srv.Shutdown() })

	dir := "/run/podunit-e2e"
	os.MkdirAll(dir, 0o755)
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dropIn := "/run/systemd/system/podunit-dns.service.d/e2e-upstream.conf"
	os.MkdirAll(filepath.Dir(dropIn), 0o755)
	conf := fmt.Sprintf("[Service]\nExecStart=\nExecStart=%s dns --resolv-conf %s\n", podunitBin, resolv)
	if err := os.WriteFile(dropIn, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	restart := func() {
		exec.Command("systemctl", "daemon-reload").Run()
		exec.Command("systemctl", "restart", "podunit-dns.service").Run()
	}
	t.Cleanup(func() {
		os.Remove(dropIn)
		os.RemoveAll(dir)
		restart()
	})
	restart()
	return func() int { return len(asked) }
}
