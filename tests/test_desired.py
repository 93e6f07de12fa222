"""The desired config of a service, and the Deployment a rollback rebuilds from a recorded config."""

from __future__ import annotations

from symphony.desired import deployment_from_config

OUTPUTS = {"db": {"host": "127.0.0.1", "port": "5544", "url": "postgresql://u:pw@127.0.0.1:5544/app"}}
CONFIG = {"command": ["python", "app.py"], "env": {"DATABASE_URL": "${db.url}"}, "release": "r1", "port": 8080,
          "replicas": 2, "rollout": {}, "stop_grace": 3.0}


def test_a_rollback_connects_with_the_schema_version_its_revision_used() -> None:
    """The recorded `schema` selects that release's version schema (search_path), as its deploy did."""
    dep = deployment_from_config("web", "service", {**CONFIG, "schema": {"db": "public_01_notes"}}, OUTPUTS)
    assert dep.env["DATABASE_URL"] == "postgresql://u:pw@127.0.0.1:5544/app?options=-csearch_path%3Dpublic_01_notes"
    assert dep.schema == {"db": "public_01_notes"} and dep.release == "r1" and dep.replicas == 2


def test_a_rollback_without_a_schema_uses_the_plain_url() -> None:
    dep = deployment_from_config("web", "service", CONFIG, OUTPUTS)
    assert dep.env["DATABASE_URL"] == OUTPUTS["db"]["url"]


def test_a_record_that_holds_only_a_runtimes_objects_still_rolls_back() -> None:
    """A Kubernetes deployment recorded by state schema 1 keeps its objects in private: config is empty."""
    dep = deployment_from_config("web", "service", {}, OUTPUTS)
    assert (dep.command, dep.env, dep.replicas) == ([], {}, 1)
