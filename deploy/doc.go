// Package deploy holds what it takes to run mailautoconf in production: a
// hardened systemd unit, a container image recipe, Kubernetes manifests,
// Prometheus alerting rules and a Grafana dashboard (see README.md).
//
// The package has no code of its own. Its tests check the files against
// the real service: the unit with systemd-analyze, the image's build
// command by running it, the manifests against the Kubernetes API types and
// the configuration loader, and every PromQL expression against the PromQL
// parser and the metric names the service exports.
package deploy
