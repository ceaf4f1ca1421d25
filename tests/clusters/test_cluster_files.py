"""Offline checks of the files in clusters/: Ray's own validation, clusters/check.py, and proof that both fail.

* Launcher YAMLs (aws.yaml, gcp.yaml) go through what ``ray up`` runs before it launches anything:
  ``prepare_config`` + ``validate_config`` from ``ray.autoscaler._private.util`` (schema: ray-schema.json).
* KubeRay manifests go through what the KubeRay autoscaler sidecar runs on the RayCluster CR:
  ``_derive_autoscaling_config_from_ray_cr`` from ``ray.autoscaler._private.kuberay.autoscaling_config``, whose
  result is validated with the same schema.
* adaptune's invariants are clusters/check.py, the checker users run on their own files (GPU workers that
  autoscale from zero on spot/preemptible capacity, shared storage, the Ray image and version pinned to the
  installed Ray, adaptune pinned to pyproject's version, token auth on every node and pod, the RayJob running
  ``adaptune search``): its functions on the shipped files and on broken copies, and its command line on files
  written to a temporary folder.

No cloud credentials, network or Kubernetes are needed. These use Ray's private autoscaler API (checked against
the pinned ray 2.60): if a Ray upgrade moves it, these tests fail loudly rather than silently skipping.
"""

from __future__ import annotations

import ast
import copy
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr
from ray.autoscaler._private.util import prepare_config, validate_config

from clusters import check

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = ROOT / "clusters"
RAY_VERSION = ray.__version__
with open(ROOT / "pyproject.toml", "rb") as _handle:
    ADAPTUNE_VERSION = tomllib.load(_handle)["project"]["version"]
PINS = check.Pins(ray=RAY_VERSION, adaptune=ADAPTUNE_VERSION)

LAUNCHERS = ("aws.yaml", "gcp.yaml")
KUBERAY = ("kuberay-storage.yaml", "kuberay-raycluster.yaml", "kuberay-rayjob.yaml")
SHARED_MOUNT = check.SHARED_MOUNT


def load(name: str) -> Any:
    with open(CLUSTERS / name) as handle:
        return yaml.safe_load(handle)


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
        if path.name in ("README.md", "__pycache__") or path.name.startswith("."):
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
    assert check.launcher_problems(load(name), PINS) == []


@pytest.mark.parametrize("name", ["kuberay-raycluster.yaml", "kuberay-rayjob.yaml"])
def test_kuberay_manifest_passes_rays_own_conversion(name):
    manifest = load(name)
    assert manifest["apiVersion"] == "ray.io/v1"
    autoscaling = _derive_autoscaling_config_from_ray_cr(to_cr(manifest))  # validates internally as well
    validate_config(autoscaling)
    assert autoscaling["provider"]["type"] == "kuberay"


@pytest.mark.parametrize("name", ["kuberay-raycluster.yaml", "kuberay-rayjob.yaml"])
def test_kuberay_cluster_invariants(name):
    assert check.raycluster_problems(to_cr(load(name))["spec"], PINS, shared_claim()) == []


@pytest.mark.parametrize("name", ["kuberay-raycluster.yaml", "kuberay-rayjob.yaml"])
def test_checker_reads_gpus_and_scaling_as_ray_does(name):
    """check.py reads GPU groups without Ray: it must see the node types Ray's KubeRay conversion derives."""
    cr = to_cr(load(name))
    derived = _derive_autoscaling_config_from_ray_cr(cr)["available_node_types"]
    groups = cr["spec"]["workerGroupSpecs"]
    assert {g["groupName"]: (check.group_gpus(g), *check.worker_scaling(g)) for g in groups} == {
        g["groupName"]: (derived[g["groupName"]]["resources"].get("GPU", 0), derived[g["groupName"]]["min_workers"],
                         derived[g["groupName"]]["max_workers"]) for g in groups}
    assert check.group_gpus(cr["spec"]["headGroupSpec"]) == derived["headgroup"]["resources"].get("GPU", 0)


def test_rayjob_invariants():
    assert check.rayjob_problems(load("kuberay-rayjob.yaml"), PINS, load("kuberay-raycluster.yaml")["spec"]) == []


def test_shipped_files_pass_the_checker_together():
    """What a user runs: all launcher configs and manifests at once (claim, cluster spec and namespace shared)."""
    assert check.check_files([str(CLUSTERS / n) for n in (*LAUNCHERS, *KUBERAY)], PINS) == []


def test_checker_needs_only_pyyaml():
    tree = ast.parse((CLUSTERS / "check.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    assert imported - set(sys.stdlib_module_names) == {"yaml"}


def test_dockerfile_pins_ray_and_adaptune():
    text = (CLUSTERS / "Dockerfile").read_text()
    assert re.search(rf"^FROM rayproject/ray:{re.escape(RAY_VERSION)}-py311-gpu$", text, flags=re.MULTILINE)
    assert f"adaptune-{ADAPTUNE_VERSION}-py3-none-any.whl" in text
    tags = set(re.findall(r"-t (\S+)", text))
    pods = check.pod_specs(load("kuberay-raycluster.yaml")["spec"]).values()
    images = {pod["containers"][0]["image"] for pod in pods}
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
    problems = check.launcher_problems(config, PINS)
    assert any(expected in problem for problem in problems), problems


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
    problems = check.launcher_problems(config, PINS)
    assert any(expected in problem for problem in problems), problems


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
    problems = check.raycluster_problems(manifest["spec"], PINS, shared_claim())
    assert any(expected in problem for problem in problems), problems


RAYJOB_BREAKS = {
    "not-adaptune": (_set("spec.entrypoint", "python train.py"), "does not run `adaptune search`"),
    "keeps-cluster": (_set("spec.shutdownAfterJobFinishes", False), "shutdownAfterJobFinishes"),
    "config-not-mounted": (
        _set("spec.entrypoint", "adaptune search /home/ray/search.yaml --out /mnt/shared/x"),
        "ConfigMap",
    ),
    "out-not-shared": (
        _set("spec.entrypoint", "adaptune search /etc/adaptune/search.yaml --out /home/ray/x"),
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
    problems = check.rayjob_problems(job, PINS, load("kuberay-raycluster.yaml")["spec"])
    assert any(expected in problem for problem in problems), problems


def test_claim_that_one_node_only_can_mount_fails_the_checker():
    claim = load("kuberay-storage.yaml")
    claim["spec"]["accessModes"] = ["ReadWriteOnce"]
    assert any("ReadWriteMany" in problem for problem in check.volume_claim_problems(claim))


# --------------------------------------------------------------------------------------------------------------
# The checker as a user runs it: `python clusters/check.py FILE ...`, one line per problem, exit status 0 or 1.
# --------------------------------------------------------------------------------------------------------------


def run_checker(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CLUSTERS / "check.py"), *map(str, paths)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_checker_command_passes_the_shipped_files():
    result = run_checker(*(CLUSTERS / n for n in (*LAUNCHERS, *KUBERAY)))
    assert result.returncode == 0, result.stdout
    assert result.stdout == ""


def test_checker_command_prints_one_line_per_problem_of_a_broken_file(tmp_path):
    config = load("aws.yaml")
    config["available_node_types"]["gpu_worker"]["min_workers"] = 1
    del config["file_mounts"]["~/.ray/auth_token"]
    broken = tmp_path / "my-cluster.yaml"
    broken.write_text(yaml.safe_dump(config))
    result = run_checker(broken)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{broken}: ") for line in lines), lines
    assert "autoscale from 0" in lines[0] and "token file" in lines[1]


def test_checker_command_checks_files_against_each_other(tmp_path):
    storage = load("kuberay-storage.yaml")
    storage["metadata"]["namespace"] = "other"
    storage_path = tmp_path / "storage.yaml"
    storage_path.write_text(yaml.safe_dump(storage))
    result = run_checker(storage_path, CLUSTERS / "kuberay-raycluster.yaml")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{CLUSTERS / 'kuberay-raycluster.yaml'}: namespace 'default' differs from 'other' in {storage_path}"]


def test_checker_command_reports_what_it_cannot_read(tmp_path):
    (tmp_path / "bad.yaml").write_text("provider: [unclosed\n")
    (tmp_path / "search.yaml").write_text(yaml.safe_dump({"task": "mnist->usps"}))
    result = run_checker(tmp_path / "bad.yaml", tmp_path / "search.yaml", tmp_path / "missing.yaml")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [str(tmp_path / n) for n in ("bad.yaml", "search.yaml",
                                                                                     "missing.yaml")]
    assert "cannot read" in lines[0] and "not a Ray cluster launcher config" in lines[1] and "cannot read" in lines[2]
