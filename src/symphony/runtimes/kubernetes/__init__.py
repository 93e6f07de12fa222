"""The Kubernetes runtime: rendering a stack to manifests (apply, watch and prune come next)."""
