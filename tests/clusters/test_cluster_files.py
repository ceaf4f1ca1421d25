"""Offline checks of the files in clusters/: Ray's own validation, adaptune's invariants, and proof that both fail.

* Launcher YAMLs (aws.yaml, gcp.yaml) go through what ``ray up`` runs before it launches anything:
  ``prepare_config`` + ``validate_config`` from ``ray.autoscaler._private.util`` (schema: ray-schema.json).
* KubeRay manifests go through what the KubeRay autoscaler sidecar runs on the RayCluster CR:
  ``_derive_autoscaling_config_from_ray_cr`` from ``ray.autoscaler._private.kuberay.autoscaling_config``, whose
  result is validated with the same schema.
* adaptune's invariants: GPU workers that autoscale from zero on spot/preemptible capacity, shared storage, the
  Ray image and version pinned to the installed Ray, adaptune pinned to pyproject's version, token auth on every
  node and pod, the RayJob running ``adaptune search``.

No cloud credentials, network or Kubernetes are needed. These use Ray's private autoscaler API (checked against
the pinned ray 2.60): if a Ray upgrade moves it, these tests fail loudly rather than silently skipping.
"""

from __future__ import annotations

import copy
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = ROOT / "clusters"
RAY_VERSION = ray.__version__
with open(ROOT / "pyproject.toml", "rb") as _handle:
    ADAPTUNE_VERSION = tomllib.load(_handle)["project"]["version"]

LAUNCHERS = ("aws.yaml", "gcp.yaml")
LAUNCHER_IMAGE = re.compile(rf"^rayproject/ray:{re.escape(RAY_VERSION)}-py311-(cpu|gpu)$")
KUBERAY_IMAGE = re.compile(rf":{re.escape(ADAPTUNE_VERSION)}-ray{re.escape(RAY_VERSION)}-py311-gpu$")
SHARED_MOUNT = "/mnt/shared"
TOKEN_SECRET_KEY = "auth_token"


def load(name: str) -> Any:
    with open(CLUSTERS / name) as handle:
        return yaml.safe_load(handle)


# --------------------------------------------------------------------------------------------------------------
# Invariant checkers: each returns the list of problems (empty = fine), so negative tests can assert on them.
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
    """Every ``ray start`` in ``commands`` has ``RAY_AUTH_MODE=token`` in its environment, and there is one."""
    found = False
    for command in commands:
        for part in command.split(";"):
            if start in part:
                found = True
                if "RAY_AUTH_MODE=token" not in part.split(start)[0]:
                    return False
    return found


def launcher_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    provider = config["provider"]["type"]
    nodes = config.get("available_node_types", {})
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
        if not _is_spot(provider, node["node_config"]):
            problems.append(f"{name}: GPU workers are not spot/preemptible")
        if not _has_bucket_access(provider, node["node_config"]):
            problems.append(f"{name}: GPU workers get no access to the storage bucket")
    docker = config.get("docker") or {}
    images = {key: docker.get(key) for key in ("image", "head_image", "worker_image") if docker.get(key)}
    if not images:
        problems.append("no docker image")
    for key, image in images.items():
        if not LAUNCHER_IMAGE.match(image):
            problems.append(f"docker.{key} {image!r} is not pinned to rayproject/ray:{RAY_VERSION}-py311-cpu|gpu")
    worker_image = docker.get("worker_image", docker.get("image", ""))
    if not worker_image.endswith("-gpu"):
        problems.append("the worker image is not a GPU image")
    if not _starts_with_token_auth(config.get("head_start_ray_commands", []), "ray start --head"):
        problems.append("the head does not start with RAY_AUTH_MODE=token")
    if not _starts_with_token_auth(config.get("worker_start_ray_commands", []), "ray start --address"):
        problems.append("workers do not start with RAY_AUTH_MODE=token")
    if config.get("file_mounts", {}).get("~/.ray/auth_token") != "~/.ray/auth_token":
        problems.append("the token file ~/.ray/auth_token is not file-mounted to the nodes")
    pins = [c for c in config.get("setup_commands", []) if f'"adaptune=={ADAPTUNE_VERSION}"' in c]
    if not pins:
        problems.append(f"setup_commands do not install adaptune=={ADAPTUNE_VERSION}")
    return problems


def _containers(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    containers = {"head": spec["headGroupSpec"]["template"]["spec"]["containers"][0]}
    for group in spec.get("workerGroupSpecs", []):
        containers[group["groupName"]] = group["template"]["spec"]["containers"][0]
    return containers


def _env_problems(where: str, env: list[dict[str, Any]]) -> list[str]:
    by_name = {item["name"]: item for item in env or []}
    problems = []
    if by_name.get("RAY_AUTH_MODE", {}).get("value") != "token":
        problems.append(f"{where}: RAY_AUTH_MODE is not 'token'")
    secret = by_name.get("RAY_AUTH_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef", {})
    if secret.get("key") != TOKEN_SECRET_KEY or not secret.get("name"):
        problems.append(f"{where}: RAY_AUTH_TOKEN does not come from a Secret's {TOKEN_SECRET_KEY!r} key")
    return problems


def _mounts_shared_volume(pod_spec: dict[str, Any], claim: str) -> bool:
    volumes = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod_spec.get("volumes", [])
        if "persistentVolumeClaim" in v
    }
    mounts = pod_spec["containers"][0].get("volumeMounts", [])
    return any(m["mountPath"] == SHARED_MOUNT and volumes.get(m["name"]) == claim for m in mounts)


def raycluster_problems(spec: dict[str, Any], autoscaling: dict[str, Any], claim: str) -> list[str]:
    """``spec``: a RayCluster spec; ``autoscaling``: Ray's conversion of it; ``claim``: the shared PVC's name."""
    problems = []
    if str(spec.get("rayVersion")) != RAY_VERSION:
        problems.append(f"rayVersion {spec.get('rayVersion')!r} is not the installed Ray {RAY_VERSION}")
    if spec.get("enableInTreeAutoscaling") is not True:
        problems.append("enableInTreeAutoscaling is not true")
    if (spec.get("authOptions") or {}).get("mode") != "token":
        problems.append("authOptions.mode is not 'token'")
    gpu_types = {
        name: node
        for name, node in autoscaling["available_node_types"].items()
        if name != autoscaling["head_node_type"] and node["resources"].get("GPU", 0) >= 1
    }
    if not gpu_types:
        problems.append("no GPU worker group")
    for name, node in gpu_types.items():
        if node["min_workers"] != 0 or node["max_workers"] < 1:
            problems.append(f"{name}: GPU workers should autoscale from 0 to at least 1")
    if autoscaling["available_node_types"][autoscaling["head_node_type"]]["resources"].get("GPU", 0):
        problems.append("the head has GPUs: it should be a CPU pod")
    for name, container in _containers(spec).items():
        if not KUBERAY_IMAGE.search(container.get("image", "")):
            problems.append(
                f"{name}: image {container.get('image')!r} is not adaptune {ADAPTUNE_VERSION} on Ray {RAY_VERSION}"
            )
        problems += _env_problems(name, container.get("env"))
    problems += _env_problems("autoscaler", (spec.get("autoscalerOptions") or {}).get("env"))
    pods = {"head": spec["headGroupSpec"]["template"]["spec"]}
    pods.update({g["groupName"]: g["template"]["spec"] for g in spec.get("workerGroupSpecs", [])})
    for name, pod in pods.items():
        if not _mounts_shared_volume(pod, claim):
            problems.append(f"{name}: the shared volume {claim!r} is not mounted at {SHARED_MOUNT}")
    return problems


def _without_config_mount(spec: dict[str, Any], config_volume: str) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    pod = spec["headGroupSpec"]["template"]["spec"]
    pod["volumes"] = [v for v in pod["volumes"] if v["name"] != config_volume]
    container = pod["containers"][0]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != config_volume]
    return spec


def rayjob_problems(job: dict[str, Any], cluster: dict[str, Any]) -> list[str]:
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
    if _without_config_mount(spec["rayClusterSpec"], config_volume) != cluster["spec"]:
        problems.append("rayClusterSpec differs from kuberay-raycluster.yaml's spec (beyond the config mount)")
    submitter = spec.get("submitterPodTemplate", {}).get("spec", {}).get("containers", [{}])[0]
    problems += _env_problems("submitter", submitter.get("env"))
    if submitter.get("image") != f"rayproject/ray:{RAY_VERSION}-py311-cpu":
        problems.append(f"the submitter image {submitter.get('image')!r} is not pinned to Ray {RAY_VERSION}")
    return problems


def to_cr(manifest: dict[str, Any]) -> dict[str, Any]:
    """The RayCluster CR that KubeRay builds: a RayCluster as is, a RayJob's rayClusterSpec under its metadata."""
    if manifest["kind"] == "RayJob":
        return {"metadata": manifest["metadata"], "spec": manifest["spec"]["rayClusterSpec"]}
    return manifest


def shared_claim() -> str:
    pvc = load("kuberay-storage.yaml")
    assert pvc["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in pvc["spec"]["accessModes"]
    return pvc["metadata"]["name"]


# --------------------------------------------------------------------------------------------------------------
# The files as shipped pass.
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(p.name for p in CLUSTERS.glob("*.yaml")))
def test_yaml_files_load_with_safe_load(path):
    assert isinstance(load(path), dict)


def test_readme_maps_every_file_to_a_command():
    readme = (CLUSTERS / "README.md").read_text()
    first_table = readme.split("\n## ")[0]  # the file -> command table comes before the first section
    rows = re.finditer(r"^\| `([^`]+)` \|[^|]*\| (.+) \|$", first_table, flags=re.MULTILINE)
    table = {m.group(1): m.group(2) for m in rows}
    for path in CLUSTERS.iterdir():
        if path.name == "README.md" or path.name.startswith("."):
            continue
        assert path.name in table, f"clusters/README.md does not map {path.name} to a command"
        assert path.name in table[path.name], f"the command for {path.name} does not name the file"


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_yaml_passes_rays_own_validation(name):
    prepared = prepare_config(copy.deepcopy(load(name)))  # what `ray up` does first: defaults, docker, min/max
    validate_config(prepared)  # ray-schema.json + Ray's cross-field checks
    assert prepared["provider"]["type"] == name.removesuffix(".yaml")


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_yaml_invariants(name):
    assert launcher_problems(load(name)) == []


@pytest.mark.parametrize("name", ["kuberay-raycluster.yaml", "kuberay-rayjob.yaml"])
def test_kuberay_manifest_passes_rays_own_conversion(name):
    manifest = load(name)
    assert manifest["apiVersion"] == "ray.io/v1"
    autoscaling = _derive_autoscaling_config_from_ray_cr(to_cr(manifest))  # validates internally as well
    validate_config(autoscaling)
    assert autoscaling["provider"]["type"] == "kuberay"


@pytest.mark.parametrize("name", ["kuberay-raycluster.yaml", "kuberay-rayjob.yaml"])
def test_kuberay_cluster_invariants(name):
    cr = to_cr(load(name))
    assert raycluster_problems(cr["spec"], _derive_autoscaling_config_from_ray_cr(cr), shared_claim()) == []


def test_rayjob_invariants():
    assert rayjob_problems(load("kuberay-rayjob.yaml"), load("kuberay-raycluster.yaml")) == []


def test_kuberay_namespaces_match():
    namespaces = {load(n)["metadata"]["namespace"] for n in ("kuberay-storage.yaml", "kuberay-raycluster.yaml")}
    assert namespaces == {load("kuberay-rayjob.yaml")["metadata"]["namespace"]}


def test_dockerfile_pins_ray_and_adaptune():
    text = (CLUSTERS / "Dockerfile").read_text()
    assert re.search(rf"^FROM rayproject/ray:{re.escape(RAY_VERSION)}-py311-gpu$", text, flags=re.MULTILINE)
    assert f"adaptune-{ADAPTUNE_VERSION}-py3-none-any.whl" in text
    tags = set(re.findall(r"-t (\S+)", text))
    images = {c["image"] for c in _containers(load("kuberay-raycluster.yaml")["spec"]).values()}
    assert tags and tags == images, "the tag the Dockerfile builds is not the image the manifests run"


def test_local_two_nodes_script_keeps_token_auth_on():
    script = CLUSTERS / "local-two-nodes.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)  # syntax only; starts nothing
    starts = [line for line in script.read_text().splitlines() if '"$RAY" start' in line]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token" in line for line in starts)


def test_search_cluster_config_cluster_choices():
    raw = load("search-cluster.yaml")
    storage = raw["storage"]
    assert re.match(r"^(s3|gs)://[a-z0-9][a-z0-9.-]+/", storage) or storage.startswith(SHARED_MOUNT + "/")
    resources = raw["resources"]
    assert 0 < resources["gpus_per_trial"] < 1, "fractional GPUs: several trials share one GPU"
    assert resources["workers"] > 1 and resources["runner"] in ("train", "auto"), "Ray Train data parallel"
    # An autoscaling cluster has no GPUs when the search starts: the cap must be explicit, and fill the cluster
    # (every file's GPU group scales to the same number of one-GPU nodes).
    max_gpus = {n: load(n)["available_node_types"]["gpu_worker"]["max_workers"] for n in LAUNCHERS}
    max_gpus["kuberay"] = load("kuberay-raycluster.yaml")["spec"]["workerGroupSpecs"][0]["maxReplicas"]
    trials_per_gpu = round(1 / (resources["gpus_per_trial"] * resources["workers"]))
    assert {resources["max_concurrent"]} == {gpus * trials_per_gpu for gpus in max_gpus.values()}, max_gpus
    assert Path(raw["out"]).is_absolute(), "a Ray job's working directory vanishes: out must be absolute"


def test_search_cluster_config_is_accepted_without_storage():
    """Every other key of search-cluster.yaml is accepted by adaptune's loader today."""
    from adaptune.search.config import build_config

    raw = load("search-cluster.yaml")
    raw.pop("storage")
    config = build_config(raw)
    assert config.resources.resolved_runner == "train"
    assert config.resources.gpus_per_trial == 0.25


def test_search_cluster_config_is_accepted_with_storage():
    from adaptune.search.config import build_config

    config = build_config(load("search-cluster.yaml"))
    assert config.storage.startswith("s3://")


# --------------------------------------------------------------------------------------------------------------
# Negative tests: broken copies of the files must fail the same checks.
# --------------------------------------------------------------------------------------------------------------


def _set(path: str, value: Any):
    """A mutation that sets (or, with value=DELETE, deletes) a dotted path; list indexes are integers."""

    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = doc
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value

    return mutate


DELETE = object()


@pytest.mark.parametrize("name", LAUNCHERS)
@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        pytest.param(
            _set("max_workers", "eight"),
            jsonschema.ValidationError,
            "'eight' is not of type 'integer'",
            id="max_workers-not-int",
        ),
        pytest.param(
            _set("available_node_types.gpu_worker.resources.GPU", 0.5),
            jsonschema.ValidationError,
            "0.5 is not of type 'integer'",
            id="fractional-node-gpu",
        ),
        pytest.param(
            _set("available_node_types.gpu_worker.spot", True),
            jsonschema.ValidationError,
            "'spot' was unexpected",
            id="unknown-node-key",
        ),
        pytest.param(
            _set("docker.gpu_image", "x"),
            jsonschema.ValidationError,
            "'gpu_image' was unexpected",
            id="unknown-docker-key",
        ),
        pytest.param(_set("head_node_type", "gpu_head"), ValueError, "head_node_type", id="head-type-missing"),
        pytest.param(
            _set("available_node_types.gpu_worker.min_workers", 9), ValueError, "min_workers", id="min-over-max"
        ),
    ],
)
def test_broken_launcher_yaml_fails_rays_validation(name, mutate, error, match):
    config = load(name)
    mutate(config)
    with pytest.raises(error, match=match):
        validate_config(prepare_config(config))


LAUNCHER_BREAKS = {
    "drop-gpu-group": (_set("available_node_types.gpu_worker", DELETE), "no GPU worker node type"),
    "gpu-resource-zero": (_set("available_node_types.gpu_worker.resources.GPU", 0), "no GPU worker node type"),
    "gpu-on-head": (_set("available_node_types.head.resources.GPU", 1), "the head has GPUs"),
    "min-workers-1": (_set("available_node_types.gpu_worker.min_workers", 1), "autoscale from 0"),
    "unpinned-image": (_set("docker.worker_image", "rayproject/ray:latest-gpu"), "is not pinned"),
    "old-ray-image": (_set("docker.head_image", "rayproject/ray:2.59.0-py311-cpu"), "is not pinned"),
    "cpu-worker-image": (_set("docker.worker_image", f"rayproject/ray:{RAY_VERSION}-py311-cpu"), "not a GPU image"),
    "head-without-token": (_set("head_start_ray_commands.1", "ray start --head --port=6379"), "the head does not"),
    "workers-without-token": (
        _set("worker_start_ray_commands", ["ray start --address=$RAY_HEAD_IP:6379"]),
        "workers do not",
    ),
    "no-token-file": (lambda c: c["file_mounts"].pop("~/.ray/auth_token"), "token file"),
    "adaptune-unpinned": (_set("setup_commands.0", "pip install adaptune"), "do not install adaptune"),
}


@pytest.mark.parametrize("name", LAUNCHERS)
@pytest.mark.parametrize("case", sorted(LAUNCHER_BREAKS))
def test_broken_launcher_yaml_fails_invariants(name, case):
    mutate, expected = LAUNCHER_BREAKS[case]
    config = load(name)
    mutate(config)
    assert any(expected in problem for problem in launcher_problems(config)), launcher_problems(config)


@pytest.mark.parametrize(
    ("name", "mutate", "expected"),
    [
        ("aws.yaml", _set("available_node_types.gpu_worker.node_config.InstanceMarketOptions", DELETE), "spot"),
        ("gcp.yaml", _set("available_node_types.gpu_worker.node_config.scheduling", DELETE), "preemptible"),
        (
            "gcp.yaml",
            _set("available_node_types.gpu_worker.node_config.scheduling", [{"preemptible": True}]),
            "preemptible",
        ),
        (
            "gcp.yaml",
            _set("available_node_types.gpu_worker.node_config.scheduling.onHostMaintenance", "MIGRATE"),
            "preemptible",
        ),
        ("aws.yaml", _set("available_node_types.gpu_worker.node_config.IamInstanceProfile", DELETE), "bucket"),
        ("gcp.yaml", _set("available_node_types.gpu_worker.node_config.serviceAccounts", DELETE), "bucket"),
    ],
)
def test_broken_launcher_provider_specifics_fail_invariants(name, mutate, expected):
    config = load(name)
    mutate(config)
    assert any(expected in problem for problem in launcher_problems(config)), launcher_problems(config)


GPU_LIMITS = "spec.workerGroupSpecs.0.template.spec.containers.0.resources"


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        pytest.param(
            _set("spec.workerGroupSpecs.0.rayStartParams", {"num-gpus": "-1"}),
            jsonschema.ValidationError,
            "-1 is less than the minimum of 0",
            id="negative-gpus",
        ),
        pytest.param(
            _set("spec.workerGroupSpecs.0.minReplicas", 1.5),
            jsonschema.ValidationError,
            "1.5 is not of type 'integer'",
            id="replicas-not-int",
        ),
        pytest.param(_set("metadata.namespace", DELETE), KeyError, "namespace", id="no-namespace"),
        pytest.param(_set(GPU_LIMITS, {}), ValueError, "failed to detect `CPU`", id="no-resources-at-all"),
    ],
)
def test_broken_raycluster_fails_rays_conversion(mutate, error, match):
    manifest = load("kuberay-raycluster.yaml")
    mutate(manifest)
    with pytest.raises(error, match=match):
        validate_config(_derive_autoscaling_config_from_ray_cr(manifest))


RAYCLUSTER_BREAKS = {
    "drop-gpu-group": (_set("spec.workerGroupSpecs", []), "no GPU worker group"),
    "no-gpu-limits": (
        lambda m: [
            m["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"][k].pop("nvidia.com/gpu")
            for k in ("limits", "requests")
        ],
        "no GPU worker group",
    ),
    "min-replicas-1": (_set("spec.workerGroupSpecs.0.minReplicas", 1), "autoscale from 0"),
    "no-autoscaling": (_set("spec.enableInTreeAutoscaling", False), "enableInTreeAutoscaling"),
    "old-ray": (_set("spec.rayVersion", "2.59.0"), "rayVersion"),
    "auth-disabled": (_set("spec.authOptions.mode", "disabled"), "authOptions.mode"),
    "worker-without-token-mode": (
        _set("spec.workerGroupSpecs.0.template.spec.containers.0.env.0.value", "disabled"),
        "gpu: RAY_AUTH_MODE",
    ),
    "head-token-inline": (
        _set("spec.headGroupSpec.template.spec.containers.0.env.1", {"name": "RAY_AUTH_TOKEN", "value": "x"}),
        "head: RAY_AUTH_TOKEN",
    ),
    "autoscaler-without-token": (_set("spec.autoscalerOptions.env", []), "autoscaler: RAY_AUTH_MODE"),
    "unpinned-image": (
        _set("spec.headGroupSpec.template.spec.containers.0.image", "rayproject/ray:latest"),
        "head: image",
    ),
    "no-shared-volume": (
        _set("spec.workerGroupSpecs.0.template.spec.volumes.0.persistentVolumeClaim.claimName", "other"),
        "gpu: the shared volume",
    ),
}


@pytest.mark.parametrize("case", sorted(RAYCLUSTER_BREAKS))
def test_broken_raycluster_fails_invariants(case):
    mutate, expected = RAYCLUSTER_BREAKS[case]
    manifest = load("kuberay-raycluster.yaml")
    mutate(manifest)
    problems = raycluster_problems(manifest["spec"], _derive_autoscaling_config_from_ray_cr(manifest), shared_claim())
    assert any(expected in problem for problem in problems), problems


RAYJOB_BREAKS = {
    "not-adaptune": (_set("spec.entrypoint", "python train.py"), "does not run `adaptune search`"),
    "keeps-cluster": (_set("spec.shutdownAfterJobFinishes", False), "shutdownAfterJobFinishes"),
    "config-not-mounted": (
        _set("spec.entrypoint", "adaptune search /tmp/search.yaml --out /mnt/shared/x"),
        "ConfigMap",
    ),
    "out-not-shared": (
        _set("spec.entrypoint", "adaptune search /etc/adaptune/search.yaml --out /tmp/x"),
        "shared volume",
    ),
    "spec-drift": (_set("spec.rayClusterSpec.workerGroupSpecs.0.maxReplicas", 4), "differs"),
    "submitter-without-token": (_set("spec.submitterPodTemplate.spec.containers.0.env", []), "submitter"),
    "submitter-unpinned": (
        _set("spec.submitterPodTemplate.spec.containers.0.image", "rayproject/ray:latest"),
        "submitter image",
    ),
}


@pytest.mark.parametrize("case", sorted(RAYJOB_BREAKS))
def test_broken_rayjob_fails_invariants(case):
    mutate, expected = RAYJOB_BREAKS[case]
    job = load("kuberay-rayjob.yaml")
    mutate(job)
    problems = rayjob_problems(job, load("kuberay-raycluster.yaml"))
    assert any(expected in problem for problem in problems), problems
