// Package deploy holds Kairoscope's deployment files: a three-node NATS
// cluster's configuration (nats/), systemd units (systemd/) and Kubernetes
// manifests (k8s/); README.md is the guide. It has no code: its test
// starts the NATS configuration as a real three-node cluster and runs the
// run log on it with replicated streams.
package deploy
