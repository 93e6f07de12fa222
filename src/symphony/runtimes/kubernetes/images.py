"""Building a service's image with its `build` command and deploying it by digest.

The command (docker build/push, buildah, kaniko, ...) runs in the service's source folder with
SYMPHONY_IMAGE (the service's `image`, the name to build and push) and SYMPHONY_DIGEST_FILE in its
environment. It writes the pushed image's digest to that file (`buildah push --digestfile`,
`docker buildx build --push --metadata-file` are two ways) or prints it; Symphony deploys
IMAGE@DIGEST, so a tag moved later cannot change what runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from symphony.errors import RuntimeFailure
from symphony.spec import Service

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def repository(image: str) -> str:
    """The image name without tag or digest: registry:5000/team/app:1.2 -> registry:5000/team/app."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rfind(":")]
    return name


def build_image(svc: Service, progress: Callable[[str], None]) -> str:
    """Run the build command; returns IMAGE@sha256:... of what it pushed."""
    argv = svc.build_command()
    assert argv is not None and svc.source is not None and svc.image is not None
    with tempfile.TemporaryDirectory(prefix="symphony-build-") as tmp:
        digest_file = Path(tmp) / "digest"
        env = {**os.environ, "SYMPHONY_IMAGE": svc.image, "SYMPHONY_DIGEST_FILE": str(digest_file)}
        try:
            proc = subprocess.run(argv, cwd=svc.source, env=env, capture_output=True, text=True)
        except FileNotFoundError:
            raise RuntimeFailure(f"build of {svc.name}: {argv[0]} not found",
                                fix=f"install it, or change services.{svc.name}.build") from None
        output = proc.stdout + proc.stderr
        for line in output.splitlines()[-3:]:
            progress(line)
        if proc.returncode != 0:
            tail = "\n".join(output.splitlines()[-10:])
            raise RuntimeFailure(f"build of {svc.name} failed (exit {proc.returncode}):\n{tail}")
        written = digest_file.read_text().strip() if digest_file.exists() else ""
    found = DIGEST.findall(written) or DIGEST.findall(output)
    if not found:
        raise RuntimeFailure(
            f"build of {svc.name} succeeded but gave no image digest",
            fix="write the pushed digest to $SYMPHONY_DIGEST_FILE (buildah push --digestfile, "
                "docker buildx build --push --metadata-file) or print it",
        )
    return f"{repository(svc.image)}@{found[-1]}"
