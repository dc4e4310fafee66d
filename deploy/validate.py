#!/usr/bin/env python3
"""Validates deploy/ offline; `make validate-deploy` (and so `make test`) runs it.

- Every Kubernetes manifest in deploy/kubernetes against the API schemas that
  the kubernetes-validate package (PyPI) carries, strictly (unknown fields are
  errors), for the oldest Kubernetes the manifests claim and the newest the
  package knows. A missing schema is a failure, never a skip.
- kustomization.yaml lists every manifest but the Secret (keys stay out of git).
- The StatefulSet's WARREN_SHARD auto/N says N = its replicas.

Fails loudly (exit 1) when it cannot validate, e.g. without the package.
"""
import pathlib
import subprocess
import sys

OLDEST = "1.31"  # PodDisruptionBudget.unhealthyPodEvictionPolicy is GA from 1.31
HERE = pathlib.Path(__file__).resolve().parent / "kubernetes"


def fail(message):
    print(f"validate-deploy: {message}", file=sys.stderr)
    sys.exit(1)


try:
    import kubernetes_validate  # noqa: F401
    import yaml
except ImportError as error:
    fail(f"cannot validate the manifests: {error}; install the package: python3 -m pip install kubernetes-validate")

manifests = sorted(p for p in HERE.glob("*.yaml") if p.name != "kustomization.yaml")
if not manifests:
    fail(f"no manifests in {HERE}")
for version in (OLDEST, None):
    command = [sys.executable, "-m", "kubernetes_validate", "--strict"]
    if version:
        command += ["--kubernetes-version", version]
    result = subprocess.run(command + [str(p) for p in manifests], capture_output=True, text=True)
    output = result.stdout + result.stderr
    print(output, end="")
    if result.returncode != 0 or "WARN" in output or "ERROR" in output:
        fail(f"the manifests do not validate against Kubernetes {version or 'latest'} (see above)")

kustomization = yaml.safe_load((HERE / "kustomization.yaml").read_text())
listed = set(kustomization.get("resources", []))
for name in listed:
    if not (HERE / name).is_file():
        fail(f"kustomization.yaml lists {name}, which does not exist")
for path in manifests:
    if path.name != "secret.yaml" and path.name not in listed:
        fail(f"kustomization.yaml does not list {path.name}")
if "secret.yaml" in listed:
    fail("kustomization.yaml must not apply secret.yaml: its key is a placeholder")

statefulset = yaml.safe_load((HERE / "statefulset.yaml").read_text())
replicas = statefulset["spec"]["replicas"]
env = {e["name"]: e.get("value") for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]}
if env.get("WARREN_SHARD") != f"auto/{replicas}":
    fail(f"statefulset.yaml: WARREN_SHARD is {env.get('WARREN_SHARD')!r} but replicas is {replicas}; they must say the same N")
print(f"validate-deploy: {len(manifests)} manifests valid (Kubernetes {OLDEST} and latest), kustomization and shard count consistent")
