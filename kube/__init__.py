"""The Kubernetes API as WattWise reads it: one list-then-watch per resource per process
(`cluster.KubeCluster`), each into an `store.ObjectStore` of raw API JSON that the scaler and the
extender both read. An input adapter, like telemetry: it imports no door, and only this package
(with the doors' own PATCH of a pod annotation) touches the kubernetes client."""
