"""Check Ray cluster files for what an adaptune search needs, offline: ``python clusters/check.py FILE [FILE ...]``.

Prints one line per problem (``FILE: problem``) and exits 1 if there is any, 0 if there is none. Needs PyYAML
only: no Ray, no cloud credentials, no Kubernetes. It reads:

- Ray cluster launcher configs (``ray up``; ``provider.type`` aws or gcp): a CPU head; GPU workers that autoscale
  from zero on spot/preemptible capacity and may write the storage bucket; ``rayproject/ray`` images pinned to the
  Ray adaptune runs on; ``RAY_AUTH_MODE=token`` on every ``ray start`` and the token file mounted on the nodes;
  adaptune pinned in ``setup_commands``.
- KubeRay RayCluster and RayJob manifests: ``rayVersion`` and the images pinned; the in-tree autoscaler; GPU worker
  groups that scale from zero; token auth in every container (the token from a Secret); the shared volume mounted
  at /mnt/shared on every pod. A RayJob must also run ``adaptune search`` with its config from a ConfigMap on the
  head, write to the shared volume, and delete its cluster when it ends.
- A PersistentVolumeClaim: ReadWriteMany, so that every pod can mount it.

Files given together are also checked against each other: the pods mount the claim of the PersistentVolumeClaim
given, a RayJob's cluster is the RayCluster given (plus its config mount), and all manifests share one namespace.
A file may hold several YAML documents. Ray's own schema validation of the same files (what ``ray up`` and the
KubeRay autoscaler run) needs Ray installed; tests/clusters/test_cluster_files.py runs it on the shipped files.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

SHARED_MOUNT = "/mnt/shared"
TOKEN_SECRET_KEY = "auth_token"
KUBERNETES_KINDS = ("RayCluster", "RayJob", "PersistentVolumeClaim")


@dataclass(frozen=True)
class Pins:
    """The versions a cluster must run: the Ray adaptune runs on, and adaptune itself."""

    ray: str
    adaptune: str

    @property
    def launcher_image(self) -> re.Pattern[str]:
        return re.compile(rf"^rayproject/ray:{re.escape(self.ray)}-py311-(cpu|gpu)$")

    @property
    def adaptune_image_tag(self) -> re.Pattern[str]:
        """The tag clusters/Dockerfile builds: adaptune on Ray, for GPU nodes."""
        return re.compile(rf":{re.escape(self.adaptune)}-ray{re.escape(self.ray)}-py311-gpu$")


def installed_version(distribution: str) -> str | None:
    """The version of an installed distribution, read from its metadata (nothing is imported)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def default_adaptune_version() -> str:
    """The installed adaptune's version, else this checkout's (pyproject.toml next to clusters/)."""
    installed = installed_version("adaptune")
    if installed:
        return installed
    with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["version"]


# --------------------------------------------------------------------------------------------------------------
# Ray cluster launcher configs (aws.yaml, gcp.yaml)
# --------------------------------------------------------------------------------------------------------------


def _is_spot(provider: str, node_config: dict[str, Any]) -> bool:
    if provider == "aws":
        return (node_config.get("InstanceMarketOptions") or {}).get("MarketType") == "spot"
    if provider == "gcp":
        scheduling = node_config.get("scheduling")
        if not isinstance(scheduling, dict):  # the list form of old Ray examples is wrong for the GCE API
            return False
        preemptible = scheduling.get("preemptible") is True or scheduling.get("provisioningModel") == "SPOT"
        return preemptible and scheduling.get("onHostMaintenance") == "TERMINATE"  # GPU VMs cannot migrate
    return False


def _has_bucket_access(provider: str, node_config: dict[str, Any]) -> bool:
    if provider == "aws":
        profile = node_config.get("IamInstanceProfile") or {}
        return bool(profile.get("Name") or profile.get("Arn"))
    if provider == "gcp":
        scopes = [s for account in node_config.get("serviceAccounts") or [] for s in account.get("scopes", [])]
        writable = ("/cloud-platform", "/devstorage.read_write", "/devstorage.full_control")
        return any(scope.endswith(writable) for scope in scopes)
    return False


def _starts_with_token_auth(commands: list[str], start: str) -> bool:
    """Every ``ray start`` in ``commands`` has ``RAY_AUTH_MODE=token`` in its environment, and there is one.

    A joining node never turns token auth on by itself, so each ``ray start`` must ask for it.
    """
    found = False
    for command in commands:
        for part in command.split(";"):
            if start in part:
                found = True
                if "RAY_AUTH_MODE=token" not in part.split(start)[0]:
                    return False
    return found


def launcher_problems(config: dict[str, Any], pins: Pins) -> list[str]:
    """What a Ray cluster launcher config lacks for an adaptune search (empty: nothing)."""
    problems = []
    provider = config["provider"]["type"]
    nodes = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    gpu_types = {
        name: node for name, node in nodes.items() if name != head and node.get("resources", {}).get("GPU", 0) >= 1
    }
    if not gpu_types:
        problems.append("no GPU worker node type")
    if nodes.get(head, {}).get("resources", {}).get("GPU", 0):
        problems.append("the head has GPUs: it should be a CPU node")
    for name, node in gpu_types.items():
        if node.get("min_workers", 0) != 0 or node.get("max_workers", 0) < 1:
            problems.append(f"{name}: GPU workers should autoscale from 0 to at least 1")
        if not _is_spot(provider, node.get("node_config") or {}):
            problems.append(f"{name}: GPU workers are not spot/preemptible")
        if not _has_bucket_access(provider, node.get("node_config") or {}):
            problems.append(f"{name}: GPU workers get no access to the storage bucket")
    docker = config.get("docker") or {}
    images = {key: docker.get(key) for key in ("image", "head_image", "worker_image") if docker.get(key)}
    if not images:
        problems.append("no docker image")
    for key, image in images.items():
        if not pins.launcher_image.match(image):
            problems.append(f"docker.{key} {image!r} is not pinned to rayproject/ray:{pins.ray}-py311-cpu|gpu")
    worker_image = docker.get("worker_image", docker.get("image", ""))
    if not worker_image.endswith("-gpu"):
        problems.append("the worker image is not a GPU image")
    if not _starts_with_token_auth(config.get("head_start_ray_commands", []), "ray start --head"):
        problems.append("the head does not start with RAY_AUTH_MODE=token")
    if not _starts_with_token_auth(config.get("worker_start_ray_commands", []), "ray start --address"):
        problems.append("workers do not start with RAY_AUTH_MODE=token")
    if (config.get("file_mounts") or {}).get("~/.ray/auth_token") != "~/.ray/auth_token":
        problems.append("the token file ~/.ray/auth_token is not file-mounted to the nodes")
    if not [c for c in config.get("setup_commands", []) if f'"adaptune=={pins.adaptune}"' in c]:
        problems.append(f"setup_commands do not install adaptune=={pins.adaptune}")
    return problems


# --------------------------------------------------------------------------------------------------------------
# KubeRay manifests (kuberay-raycluster.yaml, kuberay-rayjob.yaml, kuberay-storage.yaml)
# --------------------------------------------------------------------------------------------------------------


def _quantity(value: object) -> float:
    """A Kubernetes quantity as a number ("2", 1, "500m")."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def group_gpus(group: dict[str, Any]) -> float:
    """GPUs per pod of a KubeRay group, read in the order Ray's KubeRay autoscaler reads them: the group's
    ``resources``, then ``rayStartParams.num-gpus``, then the first container's limits and requests named *gpu."""
    if "GPU" in (group.get("resources") or {}):
        return _quantity(group["resources"]["GPU"])
    if "num-gpus" in (group.get("rayStartParams") or {}):
        return _quantity(group["rayStartParams"]["num-gpus"])
    resources = group["template"]["spec"]["containers"][0].get("resources") or {}
    for kind in ("limits", "requests"):
        for key, value in (resources.get(kind) or {}).items():
            if key.endswith("gpu") and _quantity(value) > 0:
                return _quantity(value)
    return 0.0


def worker_scaling(group: dict[str, Any]) -> tuple[int, int]:
    """(min, max) Ray nodes of a worker group: replicas times hosts per replica, as the autoscaler counts them."""
    hosts = group.get("numOfHosts", 1)
    return group.get("minReplicas", 0) * hosts, group.get("maxReplicas", 0) * hosts


def pod_specs(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Pod specs by group name ("head" for the head group)."""
    pods = {"head": spec["headGroupSpec"]["template"]["spec"]}
    pods.update({group["groupName"]: group["template"]["spec"] for group in spec.get("workerGroupSpecs", [])})
    return pods


def _env_problems(where: str, env: list[dict[str, Any]] | None) -> list[str]:
    by_name = {item["name"]: item for item in env or []}
    problems = []
    if by_name.get("RAY_AUTH_MODE", {}).get("value") != "token":
        problems.append(f"{where}: RAY_AUTH_MODE is not 'token'")
    secret = by_name.get("RAY_AUTH_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef", {})
    if secret.get("key") != TOKEN_SECRET_KEY or not secret.get("name"):
        problems.append(f"{where}: RAY_AUTH_TOKEN does not come from a Secret's {TOKEN_SECRET_KEY!r} key")
    return problems


def _shared_claims(pod: dict[str, Any]) -> set[str]:
    """Names of the persistent volume claims a pod's first container mounts at SHARED_MOUNT."""
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in pod.get("volumes") or [] if "persistentVolumeClaim" in v}
    mounts = pod["containers"][0].get("volumeMounts") or []
    return {claims[m["name"]] for m in mounts if m["mountPath"] == SHARED_MOUNT and m["name"] in claims}


def raycluster_problems(spec: dict[str, Any], pins: Pins, claim: str | None = None) -> list[str]:
    """What a RayCluster spec (or a RayJob's ``rayClusterSpec``) lacks; ``claim``: the shared volume's claim name,
    None to accept any claim mounted at SHARED_MOUNT."""
    problems = []
    if str(spec.get("rayVersion")) != pins.ray:
        problems.append(f"rayVersion {spec.get('rayVersion')!r} is not Ray {pins.ray}")
    if spec.get("enableInTreeAutoscaling") is not True:
        problems.append("enableInTreeAutoscaling is not true")
    if (spec.get("authOptions") or {}).get("mode") != "token":
        problems.append("authOptions.mode is not 'token'")
    gpu_groups = [group for group in spec.get("workerGroupSpecs", []) if group_gpus(group) >= 1]
    if not gpu_groups:
        problems.append("no GPU worker group")
    for group in gpu_groups:
        low, high = worker_scaling(group)
        if low != 0 or high < 1:
            problems.append(f"{group['groupName']}: GPU workers should autoscale from 0 to at least 1")
    if group_gpus(spec["headGroupSpec"]):
        problems.append("the head has GPUs: it should be a CPU pod")
    for name, pod in pod_specs(spec).items():
        container = pod["containers"][0]
        if not pins.adaptune_image_tag.search(container.get("image", "")):
            problems.append(
                f"{name}: image {container.get('image')!r} is not adaptune {pins.adaptune} on Ray {pins.ray}")
        problems += _env_problems(name, container.get("env"))
        mounted = _shared_claims(pod)
        if claim is not None and claim not in mounted:
            problems.append(f"{name}: the shared volume {claim!r} is not mounted at {SHARED_MOUNT}")
        elif claim is None and not mounted:
            problems.append(f"{name}: no persistent volume claim is mounted at {SHARED_MOUNT}")
    problems += _env_problems("autoscaler", (spec.get("autoscalerOptions") or {}).get("env"))
    return problems


def _without_volume(spec: dict[str, Any], volume: str | None) -> dict[str, Any]:
    """``spec`` with the head's volume ``volume`` and its mount taken out."""
    spec = copy.deepcopy(spec)
    pod = spec["headGroupSpec"]["template"]["spec"]
    pod["volumes"] = [v for v in pod.get("volumes", []) if v["name"] != volume]
    container = pod["containers"][0]
    container["volumeMounts"] = [m for m in container.get("volumeMounts", []) if m["name"] != volume]
    return spec


def rayjob_problems(job: dict[str, Any], pins: Pins, cluster_spec: dict[str, Any] | None = None) -> list[str]:
    """What a RayJob lacks to run one search (its ``rayClusterSpec`` is checked by :func:`raycluster_problems`);
    with ``cluster_spec``, a RayCluster's spec that the job's cluster must equal, apart from the config mount."""
    problems = []
    spec = job["spec"]
    entrypoint = spec.get("entrypoint", "")
    if not entrypoint.startswith("adaptune search "):
        problems.append(f"the entrypoint {entrypoint!r} does not run `adaptune search`")
    if spec.get("shutdownAfterJobFinishes") is not True:
        problems.append("shutdownAfterJobFinishes is not true")
    head_pod = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    config_path = entrypoint.split()[2] if len(entrypoint.split()) > 2 else ""
    config_volume = None
    for mount in head_pod["containers"][0].get("volumeMounts", []):
        if config_path.startswith(mount["mountPath"].rstrip("/") + "/"):
            config_volume = mount["name"]
    if not any(v["name"] == config_volume and "configMap" in v for v in head_pod.get("volumes", [])):
        problems.append(f"the search config {config_path!r} is not a ConfigMap mounted on the head")
    if not re.search(rf"--out {re.escape(SHARED_MOUNT)}/", entrypoint):
        problems.append(f"the entrypoint does not write its leaderboard to the shared volume ({SHARED_MOUNT})")
    if cluster_spec is not None and _without_volume(spec["rayClusterSpec"], config_volume) != cluster_spec:
        problems.append("rayClusterSpec differs from the RayCluster's spec (beyond the config mount)")
    submitter = spec.get("submitterPodTemplate", {}).get("spec", {}).get("containers", [{}])[0]
    problems += _env_problems("submitter", submitter.get("env"))
    if submitter.get("image") != f"rayproject/ray:{pins.ray}-py311-cpu":
        problems.append(f"the submitter image {submitter.get('image')!r} is not pinned to Ray {pins.ray}")
    return problems


def volume_claim_problems(claim: dict[str, Any]) -> list[str]:
    if "ReadWriteMany" not in (claim.get("spec") or {}).get("accessModes", []):
        return ["the shared volume is not ReadWriteMany: pods on several nodes cannot all mount it"]
    return []


# --------------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------------


def _documents(paths: list[str]) -> Iterator[tuple[str, Any]]:
    """(path, document) for every non-empty YAML document; a document that cannot be read is its error message."""
    for path in paths:
        try:
            with open(path) as handle:
                documents = [doc for doc in yaml.safe_load_all(handle) if doc is not None]
        except (OSError, yaml.YAMLError) as error:
            yield path, f"cannot read: {' '.join(str(error).split())}"
            continue
        if not documents:
            yield path, "no YAML document"
        for doc in documents:
            yield path, doc


def _kind(doc: Any) -> str | None:
    if isinstance(doc, dict) and isinstance(doc.get("provider"), dict):
        return "launcher"
    if isinstance(doc, dict) and doc.get("kind") in KUBERNETES_KINDS:
        return doc["kind"]
    return None


def check_files(paths: list[str], pins: Pins) -> list[str]:
    """Every problem of the files, one ``path: problem`` line each."""
    docs, problems = [], []
    for path, doc in _documents(paths):
        if isinstance(doc, str):
            problems.append(f"{path}: {doc}")
        elif _kind(doc) is None:
            problems.append(f"{path}: not a Ray cluster launcher config or a KubeRay "
                            f"{' / '.join(KUBERNETES_KINDS)} manifest")
        else:
            docs.append((path, _kind(doc), doc))
    claim = next(((doc.get("metadata") or {}).get("name") for _, kind, doc in docs
                  if kind == "PersistentVolumeClaim"), None)
    cluster = next((doc.get("spec") for _, kind, doc in docs if kind == "RayCluster"), None)
    first_manifest: tuple[str, str] | None = None  # (path, namespace): every manifest must share that namespace
    for path, kind, doc in docs:
        try:
            if kind == "launcher":
                found = launcher_problems(doc, pins)
            elif kind == "PersistentVolumeClaim":
                found = volume_claim_problems(doc)
            elif kind == "RayCluster":
                found = raycluster_problems(doc["spec"], pins, claim)
            else:
                found = rayjob_problems(doc, pins, cluster) + raycluster_problems(doc["spec"]["rayClusterSpec"], pins,
                                                                                   claim)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            found = [f"malformed {kind}: missing or invalid {error}"]
        problems += [f"{path}: {problem}" for problem in found]
        if kind != "launcher":
            metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
            namespace = metadata.get("namespace", "default")
            if first_manifest is None:
                first_manifest = (path, namespace)
            elif namespace != first_manifest[1]:
                problems.append(f"{path}: namespace {namespace!r} differs from {first_manifest[1]!r} in "
                                f"{first_manifest[0]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check Ray cluster files for what an adaptune search needs: one "
                                     "line per problem, exit status 1 if there is any.")
    parser.add_argument("files", nargs="+", help="launcher configs and KubeRay manifests, checked together")
    parser.add_argument("--ray-version", help="the Ray the cluster must run (default: the installed Ray)")
    parser.add_argument("--adaptune-version",
                        help="the adaptune the cluster must run (default: the installed one, else this checkout's)")
    args = parser.parse_args(argv)
    ray = args.ray_version or installed_version("ray")
    if ray is None:
        parser.error("Ray is not installed here: pass --ray-version (e.g. 2.60.0)")
    adaptune = args.adaptune_version or default_adaptune_version()
    problems = check_files(args.files, Pins(ray, adaptune))
    for problem in problems:
        print(problem)
    print(f"{len(args.files)} file(s) checked against Ray {ray} and adaptune {adaptune}: "
          f"{len(problems) or 'no'} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
