"""`./task cluster:up`: a single-node Kubernetes cluster of real processes on this machine."""
