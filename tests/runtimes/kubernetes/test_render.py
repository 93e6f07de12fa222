"""Rendering a stack for Kubernetes (no cluster needed): every manifest valid against the official
schemas of two Kubernetes versions (strict), passwords only by secretKeyRef, PVCs retained,
rollout settings carried over, and the Terraform export."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from conftest import ROOT, Symphony

from symphony.errors import SpecError
from symphony.runtimes.kubernetes.render import job_from_cronjob, migration_job, render
from symphony.runtimes.kubernetes.terraform import export
from symphony.spec import load_stack

VERSIONS = ("1.34.0", "1.37.0")


@pytest.fixture
def campsite(tmp_path: Path) -> Path:
    folder = tmp_path / "campsite"
    shutil.copytree(ROOT / "examples" / "campsite" / "v2", folder)
    (folder / "app").mkdir(exist_ok=True)
    spec = (folder / "symphony.yaml").read_text()
    spec = spec.replace("name: campsite\n", "name: campsite\nruntime: kubernetes\nkubernetes: {namespace: camp}\n")
    for svc in ("api", "ingest", "compute"):
        spec = spec.replace(f"  {svc}:\n", f"  {svc}:\n    image: registry.example.com/campsite:2\n", 1)
    (folder / "symphony.yaml").write_text(spec)
    return folder


def by_kind(objects: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for obj in objects:
        out.setdefault(obj["kind"], []).append(obj)
    return out


def test_every_manifest_is_valid_for_two_kubernetes_versions(campsite):
    stack = load_stack(campsite)
    objects = render(stack)
    assert [o["kind"] for o in objects].count("Deployment") == 1
    cron = next(o for o in objects if o["kind"] == "CronJob")
    # What the runtime makes at apply time: migration Jobs and a one-off run of a CronJob.
    objects += [migration_job(stack, "db", action, "01_hourly_fahrenheit") for action in ("start", "complete")]
    objects.append(job_from_cronjob(cron, "r7"))
    for version in VERSIONS:
        for obj in objects:
            kubernetes_validate.validate(obj, version, strict=True)


def test_kinds_labels_and_rollout_settings(campsite):
    objects = by_kind(render(load_stack(campsite)))
    # + the migration files (ConfigMap) and the claim each migration Job backs up into
    assert set(objects) == {"StatefulSet", "Service", "Deployment", "Job", "CronJob", "ConfigMap",
                            "PersistentVolumeClaim"}
    assert set(objects["ConfigMap"][0]["data"]) == {"00_base.yaml", "01_hourly_fahrenheit.yaml"}
    for obj in sum(objects.values(), []):
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "symphony"
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "campsite"
        assert obj["metadata"]["namespace"] == "camp"
    api = objects["Deployment"][0]["spec"]
    assert api["replicas"] == 2 and api["minReadySeconds"] == 5 and api["progressDeadlineSeconds"] == 60
    assert api["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = api["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 30  # above drain
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/healthz"
    db = objects["StatefulSet"][0]["spec"]
    assert db["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert db["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    headless = next(s for s in objects["Service"] if s["spec"].get("clusterIP") == "None")
    assert headless["metadata"]["name"] == "campsite-db"
    assert objects["CronJob"][0]["spec"]["schedule"] == "0 * * * *"


def test_no_password_in_any_manifest_and_references_become_dns_and_secret_refs(campsite):
    stack = load_stack(campsite)
    text = yaml.safe_dump_all(render(stack))
    assert "password:" not in text.lower().replace("postgres_password", "")
    api = next(o for o in render(stack) if o["kind"] == "Deployment")
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "campsite-db", "key": "url"}
    assert env["PORT"]["value"] == "8080"


def test_mixed_values_use_kubernetes_variable_expansion(tmp_path):
    (tmp_path / "symphony.yaml").write_text(textwrap.dedent("""\
        name: shop
        runtime: kubernetes
        services:
          db:
            postgres: {databases: [shop]}
          web:
            run: python -m web
            image: shop:1
            port: 8000
            env:
              DSN: "host=${db.host} port=${db.port} password=${db.password}"
        """))
    objects = render(load_stack(tmp_path))
    env = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "SYMPHONY_DB_PASSWORD",
                      "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "password"}}}
    dsn = next(e for e in env if e["name"] == "DSN")["value"]
    assert dsn == "host=shop-db.shop.svc port=5432 password=$(SYMPHONY_DB_PASSWORD)"


def test_a_service_without_image_is_a_clear_error(tmp_path):
    (tmp_path / "symphony.yaml").write_text("name: x\nruntime: kubernetes\nservices:\n  web: {run: python app.py}\n")
    with pytest.raises(SpecError, match="needs an image") as info:
        render(load_stack(tmp_path))
    assert info.value.key == "services.web.image"


def test_terraform_export_owns_the_same_objects_without_plain_passwords(campsite):
    stack = load_stack(campsite)
    tf = export(stack)
    manifests = tf["resource"]["kubernetes_manifest"]
    assert len(manifests) == len(render(stack)) + 1  # + the database Secret
    assert "random_password" in tf["resource"]
    secret = next(v for k, v in manifests.items() if k.startswith("secret_"))["manifest"]
    assert secret["stringData"]["password"].startswith("${random_password.")
    deployment = next(v for k, v in manifests.items() if k.startswith("deployment_"))
    assert any("statefulset_campsite_db" in d for d in deployment["depends_on"])
    json.dumps(tf)


def test_cli_render_and_export(campsite, workdir, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(workdir / "no-such-kubeconfig"))
    sym = Symphony(campsite)
    out = sym.run("render", check=True).stdout
    assert len(list(yaml.safe_load_all(out))) == len(render(load_stack(campsite)))
    target = workdir / "tf" / "main.tf.json"
    target.parent.mkdir()
    sym.run("export", "terraform", "-o", str(target), check=True)
    assert "kubernetes_manifest" in json.loads(target.read_text())["resource"]
    refused = sym.run("up")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "no kubeconfig" in refused.stderr and "KUBECONFIG" in refused.stderr


def test_runtime_option_overrides_the_spec(workdir):
    """`--runtime kubernetes` on a local stack: the Kubernetes checks apply (images are needed)."""
    folder = workdir / "campsite"
    shutil.copytree(ROOT / "examples" / "campsite", folder, ignore=shutil.ignore_patterns("v2", ".symphony"))
    proc = Symphony(folder).run("--runtime", "kubernetes", "plan")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "services.api.image" in proc.stderr and "the kubernetes runtime needs an image" in proc.stderr


@pytest.mark.parametrize(("key", "value", "message"), [
    ("namespace", "Bad_NS", "kubernetes.namespace: invalid namespace 'Bad_NS'"),
    ("storage", "lots", "kubernetes.storage: invalid volume size 'lots'"),
])
def test_bad_kubernetes_settings_are_spec_errors(workdir, key, value, message):
    folder = workdir / "shop"
    folder.mkdir()
    (folder / "symphony.yaml").write_text(f"name: shop\nruntime: kubernetes\nkubernetes: {{{key}: {value}}}\n"
                                          "services:\n  db:\n    postgres: {}\n")
    proc = Symphony(folder).run("plan")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr and "symphony.yaml:3" in proc.stderr
