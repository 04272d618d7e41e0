# The ct_pipelines code location: a gRPC code server that the Dagster webserver and daemon
# load definitions from and (with the default run launcher) run its runs in. The same image
# serves the daemon and the webserver in docker-compose.yaml and the user-code deployment and
# run pods in the Helm values (deploy/helm/values.yaml). Build: docker build -t ct-pipelines .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/ct_pipelines

# The pinned dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# Then the package itself (both packages of the wheel: ct_pipelines and its sandbox).
COPY pyproject.toml README.md workspace.yaml ./
COPY ct_pipelines ./ct_pipelines
COPY ct_sandbox ./ct_sandbox
RUN pip install --no-deps .

# The production instance profile; docker-compose.yaml mounts the same file over it, and the
# Helm chart renders its own from the values.
COPY deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/docker/workspace.yaml /opt/dagster/workspace.yaml

RUN useradd --create-home --uid 1000 dagster \
    && mkdir -p /opt/dagster/sandbox \
    && chown -R dagster /opt/dagster
USER dagster

EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", \
     "-m", "ct_pipelines.definitions", "--location-name", "ct_pipelines"]
