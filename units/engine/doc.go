// Package engine is podunit's sync: what `podunit sync` runs each time a
// manifest changes (podunit.path) and every 20 s (podunit-sync.timer).
//
// A Syncer reads the manifest sources through generator (decoded,
// validated, defaulted, admitted on this node), writes each pod's spec
// files (podspec: the pod podshim will run, its ConfigMaps and Secrets),
// and hands the pods' units and the CronJobs' timers to units/bus, which
// queues systemd jobs and never waits on a pod: a replacement's second half
// is a hand-off unit's (Handoff, run by `podunit handoff`), a CronJob's
// runs its timer's (CronRun, run by `podunit cron-run`). A pod whose
// manifest turns invalid keeps running on its last good spec; finished
// Jobs are recorded so that they do not run again after a reboot;
// sandboxes and pod directories no unit owns are collected. The Services'
// reconciler (services.go) gives each Service its ClusterIP and node ports,
// keeps them in a record across reboots, and writes the node's Service
// table (service.Table) that the rules and the resolver follow. Each sync
// records how it went (State) for the status server.
package engine
