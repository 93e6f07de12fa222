"""Runtimes: the only parts of Symphony that touch the world. `open_runtime` is the one place that
picks a runtime by the name a stack gives; everything else talks to the `Runtime` protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from symphony.runtimes.base import Runtime
    from symphony.spec import Stack

RUNTIMES = ("local", "kubernetes")


def open_runtime(stack: Stack) -> Runtime:
    """The runtime `stack.runtime` names, for this stack (nothing is contacted yet)."""
    if stack.runtime == "kubernetes":
        from symphony.runtimes.kubernetes.runtime import KubernetesRuntime

        return KubernetesRuntime.for_stack(stack)
    from symphony.runtimes.local.runtime import LocalRuntime

    return LocalRuntime.for_stack(stack)


def manifests(stack: Stack) -> list[dict[str, Any]]:
    """The stack as Kubernetes objects (`symphony render`): no cluster needed."""
    from symphony.runtimes.kubernetes.render import render

    return render(stack)


def terraform(stack: Stack) -> dict[str, Any]:
    """The stack as Terraform JSON with kubernetes_manifest resources (`symphony export terraform`)."""
    from symphony.runtimes.kubernetes.terraform import export

    return export(stack)
