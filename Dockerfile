# The Symphony image: what Kubernetes migration Jobs run (`symphony migrate-job`), and a way to run the
# CLI anywhere. Build and push it, then set kubernetes.symphony_image in symphony.yaml:
#   docker build -t registry.example.com/symphony:0.1.0 . && docker push registry.example.com/symphony:0.1.0
FROM python:3.11-slim-bookworm

# pg_dump for the backup each migration takes first.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && rm -rf /src

# Not root: the backups claim must be writable by this uid (fsGroup in the Job).
USER 65532:65532
WORKDIR /
ENTRYPOINT []
CMD ["symphony", "--help"]
