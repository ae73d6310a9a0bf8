//go:build e2e

package e2e

// The Cockpit page (contrib/cockpit-podunit) in a real browser: Debian's
// cockpit-ws and cockpit-bridge in the test bed, Debian's chromium driven
// headless through the DevTools protocol (chromedp), logging in as a person
// would. `make test-console` installs what they need and runs them; they
// are skipped elsewhere (PODUNIT_E2E_CONSOLE unset).

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	// consoleURL is cockpit-ws in the test bed's network namespace.
	consoleURL = "http://127.0.0.1:9090"
	// The page on its own, as Cockpit's shell frames it.
	consolePage = consoleURL + "/cockpit/@localhost/podunit/index.html"
	// consoleAdmin is an administrator as Debian makes one: in the sudo
	// group, logging in with a password and turning on Cockpit's
	// administrative access (sudo, with the same password). root stays
	// in Cockpit's disallowed-users, as Debian ships it.
	consoleAdmin = "podunit-admin"
	// consoleViewer is in the podunit group (the status API) and in
	// systemd-journal (the pods' journal), without administrative access:
	// read-only.
	consoleViewer   = "podunit-viewer"
	consolePassword = "podunit-e2e-console"
	cockpitUnit     = "cockpit-e2e.service"
)

// The test bed's /etc is its own, but /home and /root are the host's: the
// viewer's home is in the test bed's /run, and chromium's in a temporary
// directory of the test's.

// consoleOrSkip skips unless make test-console runs the test, and starts
// cockpit-ws (once) with its users.
func consoleOrSkip(t *testing.T) {
	t.Helper()
	if os.Getenv("PODUNIT_E2E_CONSOLE") == "" {
		t.Skip("the browser tests run with make test-console (PODUNIT_E2E_CONSOLE=1)")
	}
	if activeState(cockpitUnit) == "active" {
		return
	}
	script := fmt.Sprintf(`set -e
id %[2]s >/dev/null 2>&1 || useradd -m -d /run/%[2]s -G podunit,systemd-journal %[2]s
echo '%[2]s:%[1]s' | chpasswd
id %[4]s >/dev/null 2>&1 || useradd -m -d /run/%[4]s -G sudo %[4]s
echo '%[4]s:%[1]s' | chpasswd
systemd-run --unit=%[3]s /usr/lib/cockpit/cockpit-ws --no-tls --address 127.0.0.1 --port 9090
`, consolePassword, consoleViewer, cockpitUnit, consoleAdmin)
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("start cockpit-ws: %v\n%s", err, out)
	}
	waitFor(t, "cockpit-ws answering", func() (bool, error) {
		code, _, err := get(consoleURL + "/")
		return code == 200, err
	})
}

// browser is a headless chromium logged in to Cockpit as one user.
type browser struct {
	t    *testing.T
	ctx  context.Context
	shot string // where the test's screenshot goes
}

// newBrowser starts chromium (a fresh profile, nothing reached outside the
// test bed) and logs in as user.
func newBrowser(t *testing.T, user string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Env("HOME=" + t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	dir := os.Getenv("PODUNIT_E2E_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	b := &browser{t: t, ctx: ctx, shot: filepath.Join(dir, t.Name()+".png")}
	// The first run starts the browser, which lives as long as the context
	// of that run: the test's, without a timeout of its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// A failing test keeps its screenshot of the moment it failed.
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot(b.shot)
			t.Logf("screenshot of the failure: %s (make test-console copies it to bin/console/)", b.shot)
		}
	})
	b.run("log in as "+user,
		chromedp.Navigate(consoleURL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-user-input")),
		chromedp.SendKeys(chromedp.ID("login-user-input"), user),
		chromedp.SendKeys(chromedp.ID("login-password-input"), consolePassword),
		chromedp.Click(chromedp.ID("login-button")),
	)
	// The shell, with the page in its menu.
	b.waitEval("Cockpit's menu listing Pods", `[...document.querySelectorAll("nav a")].some(a => a.textContent.trim() === "Pods" && a.getAttribute("href").endsWith("/podunit"))`, true)
	if user == consoleAdmin {
		b.adminAccess()
	}
	return b
}

// adminAccess turns on Cockpit's administrative access as a person does
// after the first login: "Limited access" in the top bar, the password
// again (sudo asks for it), and the top bar says "Administrative access".
func (b *browser) adminAccess() {
	b.t.Helper()
	const indicator = `document.querySelector("#super-user-indicator button")`
	b.waitEval("the top bar saying Limited access", indicator+`?.textContent`, "Limited access")
	b.run("click Limited access", chromedp.Click(chromedp.CSS("#super-user-indicator button")),
		chromedp.WaitVisible(chromedp.ID("switch-to-admin-access-password")),
		chromedp.SendKeys(chromedp.ID("switch-to-admin-access-password"), consolePassword+"\n"))
	b.waitEval("the top bar saying Administrative access", indicator+`?.textContent`, "Administrative access")
}

// run runs actions with a bound, failing the test if they fail.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates expr in the page and decodes its value into out.
func (b *browser) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		return err
	}
	return json.Unmarshal(v, out)
}

// waitEval waits until expr's value, as JSON, equals want's.
func (b *browser) waitEval(what, expr string, want any) {
	b.t.Helper()
	wantJSON, _ := json.Marshal(want)
	waitFor(b.t, what, func() (bool, error) {
		var got any
		if err := b.eval(expr, &got); err != nil {
			return false, err
		}
		gotJSON, _ := json.Marshal(got)
		if string(gotJSON) != string(wantJSON) {
			return false, fmt.Errorf("page shows %s, want %s", gotJSON, wantJSON)
		}
		return true, nil
	})
}

// open opens the page at a Cockpit location (the overview: "").
func (b *browser) open(location string) {
	b.t.Helper()
	b.run("open the page at "+location, chromedp.Navigate(consolePage+"#/"+location))
}

// screenshot saves what the browser shows as a PNG.
func (b *browser) screenshot(path string) {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot: %v", err)
	}
}

// smallScreenshot saves the page, height pixels of it at 1280 wide, scaled
// to 60 %: the README's pictures (docs/images).
func (b *browser) smallScreenshot(name string, height int64) {
	b.t.Helper()
	b.run("a tall viewport", chromedp.EmulateViewport(1280, height, chromedp.EmulateScale(0.6)))
	b.screenshot(filepath.Join(filepath.Dir(b.shot), name))
	b.run("the viewport back", chromedp.EmulateReset())
}

// The statuses of the overview's rows, by namespace/name.
const rowStatuses = `Object.fromEntries([...document.querySelectorAll("#pods tr[data-pod]")]
	.filter(r => r.dataset.pod.startsWith("default/e2e-con-"))
	.map(r => [r.dataset.pod, r.querySelector("td[data-label=Status]").textContent]))`

// Console pods: one running that logs (behind a Service), one
// crash-looping, one invalid.
func consolePods(t *testing.T) {
	t.Helper()
	writeManifest(t, "e2e-con-web.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-con-web
  labels: {app: e2e-con-web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "echo hello from the console test; `+serveForever+`"]
    ports:
    - containerPort: 80
---
apiVersion: v1
kind: Service
metadata: {name: e2e-con-web}
spec:
  selector: {app: e2e-con-web}
  ports:
  - {port: 8080, targetPort: 80}
`)
	writeManifest(t, "e2e-con-crash.yaml", `apiVersion: v1
kind: Pod
metadata: {name: e2e-con-crash}
spec:
  containers:
  - {name: c, image: localhost/podunit/busybox:1.35, command: ["sh", "-c", "echo crashing; exit 1"]}
`)
	writeManifest(t, "e2e-con-invalid.yaml", gatedPod("e2e-con-invalid", "30s", "app", serveForever))
	waitActive(t, "default", "e2e-con-web")
	waitActive(t, "default", "e2e-con-invalid")
	writeFile(t, "e2e-con-invalid.yaml", strings.Replace(gatedPod("e2e-con-invalid", "30s", "app", serveForever), "image:", "imag:", 1))
}

// User story: "I open the Pods page of my server's console and see every
// pod as podunit get pods shows it, and it follows when a pod changes."
func TestConsoleOverview(t *testing.T) {
	consoleOrSkip(t)
	consolePods(t)
	gate := func(command string) string { return gatedPod("e2e-con-gate", "10s", "app", command) }
	writeManifest(t, "e2e-con-gate.yaml", gate("echo v1; "+serveForever))
	waitActive(t, "default", "e2e-con-gate")

	b := newBrowser(t, consoleAdmin)
	b.open("")
	b.waitEval("the overview's statuses", rowStatuses, map[string]string{
		"default/e2e-con-web":     "Running",
		"default/e2e-con-crash":   "CrashLoopBackOff",
		"default/e2e-con-gate":    "Running",
		"default/e2e-con-invalid": "InvalidManifest",
	})
	// Live: an edit to a version that crashes is rolled back, and the page
	// shows it without a reload.
	var before float64
	if err := b.eval(`performance.timeOrigin`, &before); err != nil {
		t.Fatal(err)
	}
	writeFile(t, "e2e-con-gate.yaml", gate("echo v2 is broken; exit 1"))
	b.waitEval("the rolled-back pod shown RolledBack without a reload", `document.querySelector('#pods tr[data-pod="default/e2e-con-gate"] td[data-label=Status]').textContent`, "RolledBack")
	b.waitEval("the rolled-back pod ready again on its good generation", `document.querySelector('#pods tr[data-pod="default/e2e-con-gate"] td[data-label=Ready]').textContent`, "1/1")
	var after float64
	if err := b.eval(`performance.timeOrigin`, &after); err != nil || after != before {
		t.Errorf("the page was reloaded (time origin %v, then %v: %v)", before, after, err)
	}
	// The node's summary and the runtime's health from /healthz?verbose.
	b.waitEval("the summary counting the failing pod", `document.querySelector("#pods-failing").textContent !== "0"`, true)
	b.waitEval("the runtime's health check", `[...document.querySelectorAll(".health-check")].map(e => e.dataset.check).includes("runtime")`, true)
	// The Service, with the running pod's IP as its endpoint.
	ip := podState(t, "default", "e2e-con-web").Status.PodIP
	b.waitEval("the Service and its endpoint", `(() => { const r = document.querySelector('#services tr[data-service="default/e2e-con-web"]'); return r && [r.querySelector("td[data-label=Ports]").textContent, r.querySelector("td[data-label=Endpoints]").textContent] })()`, []string{"8080/TCP", ip + ":80"})
	b.screenshot(b.shot)
	b.smallScreenshot("overview.png", 1000)

	// The filter keeps the rows that match.
	b.run("filter on crash", chromedp.SendKeys(chromedp.CSS(`input[aria-label="Filter pods"]`), "crashloop"))
	b.waitEval("only the crash-looping pod", rowStatuses, map[string]string{"default/e2e-con-crash": "CrashLoopBackOff"})
}

// User story: "I open a pod and see its containers, its journal and a
// curve of its memory; I restart it from the page and watch it come back."
// And the invalid manifest's page shows validate's error beside its line.
func TestConsolePodPage(t *testing.T) {
	consoleOrSkip(t)
	consolePods(t)
	unit := waitActive(t, "default", "e2e-con-web")
	b := newBrowser(t, consoleAdmin)
	b.open("default/e2e-con-web")
	b.waitEval("the container's row", `[...document.querySelectorAll("#containers tr[data-container]")].map(r => r.dataset.container + " " + r.querySelector("td[data-label=Image]").textContent.startsWith("localhost/podunit/busybox:1.35"))`, []string{"web true"})
	b.waitEval("the container's line in the journal", `[...document.querySelectorAll("#journal .journal-line")].some(l => l.textContent.includes("[web] hello from the console test"))`, true)
	b.waitEval("the memory chart with data", `Number(document.querySelector("#chart-memory").dataset.samples) >= 3 && !document.querySelector("#chart-memory figcaption").textContent.includes("no data")`, true)
	// CPU: a curve where systemd counts the slice's CPU time (cgroup v2);
	// where it counts none (this host's cgroup v1), the chart says so.
	slice, _ := unitProps(t, unit)["Slice"].(string)
	cpu, err := systemd.GetUnitTypePropertyContext(context.Background(), slice, "Slice", "CPUUsageNSec")
	if err != nil {
		t.Fatalf("CPUUsageNSec of %s: %v", slice, err)
	}
	if ns, _ := cpu.Value.Value().(uint64); ns != math.MaxUint64 {
		b.waitEval("the CPU chart with data", `Number(document.querySelector("#chart-cpu").dataset.samples) >= 2`, true)
	} else {
		b.waitEval("the CPU chart saying why it has no data", `document.querySelector("#chart-cpu figcaption").textContent`, "CPU: not counted: systemd reports no CPU time (CPUUsageNSec) for this slice")
	}
	b.waitEval("the unit shown active", `document.querySelector("#unit-state").textContent`, "active (running)")

	// Restart from the page: the unit starts again (its start time changes)
	// and the page follows.
	before := unitProps(t, unit)["ActiveEnterTimestamp"]
	var shownBefore string
	if err := b.eval(`document.querySelector("#unit-since").textContent`, &shownBefore); err != nil {
		t.Fatal(err)
	}
	b.run("click Restart", chromedp.Click(chromedp.ID("unit-restart")))
	waitFor(t, "the unit restarted", func() (bool, error) {
		return unitProps(t, unit)["ActiveEnterTimestamp"] != before && activeState(unit) == "active", nil
	})
	b.waitEval("the page showing the new start", `document.querySelector("#unit-since").textContent !== `+jsString(shownBefore)+` && document.querySelector("#unit-state").textContent === "active (running)"`, true)
	b.waitEval("the pod Running again", `document.querySelector("#pod-title .podunit-status").textContent`, "Running")
	b.screenshot(b.shot)
	b.smallScreenshot("pod.png", 2400)

	// One container's journal: only its lines.
	b.selectOption("#journal-container", "web")
	b.waitEval("only the web container's lines", `(() => { const l = [...document.querySelectorAll("#journal .journal-line")].map(e => e.textContent); return l.length > 0 && l.every(t => t.includes("[web] ")) })()`, true)

	// Cockpit's own Logs page, from the page as the shell frames it: the
	// container's lines there, filtered on the unit and CONTAINER_NAME.
	b.run("open the pod's page in Cockpit's shell", chromedp.Navigate(consoleURL+"/podunit#/default/e2e-con-web"))
	const podFrame = `document.querySelector('iframe[name$="/podunit"]')?.contentDocument`
	b.waitEval("the page in the shell, with its way to Logs", `!!`+podFrame+`?.querySelector("#journal-open-logs")`, true)
	b.waitEval("the container chosen in the framed page", `(() => { const d = `+podFrame+`; const s = d.querySelector("#journal-container");
		Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, "value").set.call(s, "web");
		s.dispatchEvent(new Event("change", {bubbles: true})); return s.value })()`, "web")
	b.waitEval("click Open in Logs", `(() => { `+podFrame+`.querySelector("#journal-open-logs").click(); return true })()`, true)
	b.waitEval("Cockpit's Logs page on the container", `window.location.pathname + " " + decodeURIComponent(window.location.hash)`,
		"/system/logs #/?prio=debug&_SYSTEMD_UNIT="+unit+"&CONTAINER_NAME=web")
	const logsFrame = `document.querySelector('iframe[name$="/system/logs"]')?.contentDocument`
	b.waitEval("the container's line in Cockpit's Logs", `[...(`+logsFrame+`?.querySelectorAll(".cockpit-log-message") || [])].some(e => e.textContent.includes("hello from the console test"))`, true)
	b.screenshot(strings.TrimSuffix(b.shot, ".png") + "-logs.png")

	// The crash-looping pod: its last termination and its events, as
	// podunit describe words them.
	b.open("default/e2e-con-crash")
	b.waitEval("the last termination", `document.querySelector('#containers tr[data-container="c"] td[data-label="Last termination"]')?.textContent.startsWith("Error (exit 1) at ")`, true)
	b.waitEval("the restart among the events", `[...document.querySelectorAll("#events tr.event")].some(r => r.textContent.includes("container exited; restarting it: container=c exitCode=1"))`, true)

	// The invalid manifest's page: validate's error beside line 10 (image:
	// became imag:), and the pod still runs its last good spec.
	b.open("default/e2e-con-invalid")
	b.waitEval("validate's error beside its line", `[...document.querySelectorAll(".manifest-line")].filter(l => l.querySelector(".validate-message")).map(l => l.dataset.line + " " + l.querySelector(".validate-message").textContent.includes("unknown field"))`, []string{"10 true"})
	b.screenshot(strings.TrimSuffix(b.shot, ".png") + "-invalid.png")
}

// User story: "I stop a pod from the page and start it again; I remove a
// pod's manifest, after the page asked me, and the pod goes; an action
// that fails tells me why."
func TestConsoleActions(t *testing.T) {
	consoleOrSkip(t)
	writeManifest(t, "e2e-con-act.yaml", gatedPod("e2e-con-act", "30s", "app", serveForever))
	unit := waitActive(t, "default", "e2e-con-act")
	b := newBrowser(t, consoleAdmin)
	b.open("default/e2e-con-act")
	b.waitEval("the unit shown active", `document.querySelector("#unit-state")?.textContent`, "active (running)")

	b.run("click Stop", chromedp.Click(chromedp.ID("unit-stop")))
	waitFor(t, unit+" stopped", func() (bool, error) { s := activeState(unit); return s == "inactive" || s == "failed", nil })
	b.waitEval("the page showing it stopped", `/^(inactive|failed) /.test(document.querySelector("#unit-state").textContent)`, true)
	b.waitEval("Start enabled again", `document.querySelector("#unit-start").disabled`, false)
	b.run("click Start", chromedp.Click(chromedp.ID("unit-start")))
	waitFor(t, unit+" active again", func() (bool, error) { return activeState(unit) == "active", nil })
	b.waitEval("the page showing it active", `document.querySelector("#unit-state").textContent`, "active (running)")

	// Remove: a confirmation first; Cancel keeps the file.
	file := filepath.Join(manifestDir, "e2e-con-act.yaml")
	b.waitEval("Remove manifest enabled", `document.querySelector("#remove-manifest").disabled`, false)
	b.run("click Remove manifest", chromedp.Click(chromedp.ID("remove-manifest")), chromedp.WaitVisible(chromedp.ID("confirm-remove")))
	b.screenshot(strings.TrimSuffix(b.shot, ".png") + "-confirm.png")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the manifest is gone before the confirmation: %v", err)
	}
	b.run("confirm", chromedp.Click(chromedp.ID("confirm-remove")))
	waitFor(t, "the manifest removed", func() (bool, error) {
		_, err := os.Stat(file)
		return os.IsNotExist(err), nil
	})
	waitGone(t, unit)

	// A failed action says why, in systemd's words: the unit is gone.
	b.waitEval("Restart enabled", `document.querySelector("#unit-restart").disabled`, false)
	b.run("click Restart on the removed pod", chromedp.Click(chromedp.ID("unit-restart")))
	b.waitEval("the failure and why", `document.querySelector("#action-error")?.textContent.includes("systemctl restart `+unit+`: Unit `+unit+` not found.")`, true)

	b.open("")
	b.waitEval("the overview without the pod", `!!document.querySelector("#pods, #no-pods") && !document.querySelector('#pods tr[data-pod="default/e2e-con-act"]')`, true)
	b.screenshot(b.shot)
}

// User story: "A colleague in the podunit group, without administrative
// access, sees the same pods and can act on none of them."
func TestConsoleReadOnly(t *testing.T) {
	consoleOrSkip(t)
	consolePods(t)
	unit := waitActive(t, "default", "e2e-con-web")
	b := newBrowser(t, consoleViewer)
	b.open("")
	b.waitEval("the overview as the read-only user", rowStatuses, map[string]string{
		"default/e2e-con-web":     "Running",
		"default/e2e-con-crash":   "CrashLoopBackOff",
		"default/e2e-con-invalid": "InvalidManifest",
	})
	b.open("default/e2e-con-web")
	b.waitEval("the unit's state", `document.querySelector("#unit-state")?.textContent`, "active (running)")
	b.waitEval("every action disabled", `["#unit-restart", "#unit-stop", "#unit-start", "#remove-manifest"].map(s => document.querySelector(s).disabled)`, []bool{true, true, true, true})
	b.waitEval("the page saying why", `!!document.querySelector("#read-only")`, true)
	b.waitEval("the pod's journal", `[...document.querySelectorAll("#journal .journal-line")].some(l => l.textContent.includes("[web] hello from the console test"))`, true)
	b.waitEval("the memory chart with data", `Number(document.querySelector("#chart-memory").dataset.samples) >= 2`, true)
	b.screenshot(b.shot)
	// Not only the buttons: systemd refuses the viewer too.
	before := unitProps(t, unit)["ActiveEnterTimestamp"]
	if out, err := exec.Command("runuser", "-u", consoleViewer, "--", "systemctl", "restart", unit).CombinedOutput(); err == nil {
		t.Errorf("the read-only user restarted %s:\n%s", unit, out)
	}
	if after := unitProps(t, unit)["ActiveEnterTimestamp"]; after != before {
		t.Errorf("%s restarted", unit)
	}
}

// selectOption picks value in the <select> at selector, as a person's
// choice does (React hears the change event).
func (b *browser) selectOption(selector, value string) {
	b.t.Helper()
	var ok bool
	err := b.eval(`(() => { const s = document.querySelector(`+jsString(selector)+`); if (!s) return false;
		Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, "value").set.call(s, `+jsString(value)+`);
		s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, &ok)
	if err != nil || !ok {
		b.t.Fatalf("select %s in %s: %v (found: %v)", value, selector, err, ok)
	}
}

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
