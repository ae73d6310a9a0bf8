// Package quadlet translates podman's Quadlet .kube units into podunit
// manifests: the unit's Yaml= documents with its ConfigMap= files before
// them, PublishPort= as host ports, AutoUpdate= as podman's auto-update
// annotation (which podunit reads), Network=host and UserNS=auto as the
// pod fields that mean the same, and [Unit] After=/Before= on another .kube unit
// as podunit.io/after. Every assignment gets a Note: what it became, or
// why podunit cannot carry it over and what to do instead.
//
// It is pure translation: ParseUnit reads unit text (go-systemd's parser,
// with systemd's continuation lines, comments, repeated keys and empty
// assignments; drop-ins picked by DropIns as Quadlet picks them), Sources
// names the files a unit needs, and Convert turns units and those files'
// bytes into manifests, each checked as sync checks it, a ConfigMap,
// Secret or claim of a name written once for all of them and the manifests
// already there. Reading and
// writing files is the CLI's (podunit import quadlet).
package quadlet
