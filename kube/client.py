"""A kubernetes `ApiClient` from the usual places."""

from __future__ import annotations

from wattwise.models.errors import InvalidInputError


def api_client_from(kubeconfig: str | None = None, in_cluster: bool = False):
    """A kubernetes ApiClient: in-cluster service account, a kubeconfig file, or the default
    ($KUBECONFIG, ~/.kube/config). A configuration that cannot be read is an InvalidInputError
    in one line (retrying will not help; the user fixes the file or the flags)."""
    import yaml
    from kubernetes import client, config
    from kubernetes.config import ConfigException

    try:
        if in_cluster:
            config.load_incluster_config()
            return client.ApiClient()
        return config.new_client_from_config(config_file=kubeconfig)
    except (ConfigException, yaml.YAMLError) as e:
        mark = getattr(e, "problem_mark", None)
        problem = f"not valid YAML at {mark.name}, line {mark.line + 1}" if mark else (str(e).splitlines() or [""])[0]
        raise InvalidInputError("Kubernetes configuration", problem,
                                "check --kubeconfig, $KUBECONFIG or ~/.kube/config") from None
