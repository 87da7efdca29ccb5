// Package deploy holds the Kubernetes manifests for running the agent as a
// DaemonSet (kubectl apply -k deploy/). Its test decodes every manifest
// strictly and checks them against the agent's configuration and metrics.
package deploy
