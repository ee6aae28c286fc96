# The detection-model pipeline's image: Airflow 3.3.2 with the project's pinned requirements
# (the Celery provider among them), the project's wheel (models_core, example_models, and the
# registry plugin through its entry point) and the thin DAG files of dags/: exactly what
# docs/how-to/install-into-airflow.md installs into an existing Airflow.
# Used by every Airflow service in docker-compose.yaml.
#
# Why python:3.11-slim and not apache/airflow:3.3.2: the image then holds exactly the pinned
# set that `make test` and CI run against (requirements.txt, the same SQLAlchemy and
# python-dateutil holds), instead of our pins layered over the official image's own
# constraint set and its ~80 bundled providers. What the official entrypoint does for us
# (waiting for the database, `db migrate`, creating users) is done by the compose file:
# healthchecks + depends_on, and the airflow-init service.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# The wheel, built from the package's sources only (pyproject.toml, README.md, include/).
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY include/ ./include/
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}

# The user the services run as (gid 0, as in the official image, so mounted volumes work).
ARG AIRFLOW_UID=50000

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

# curl: the compose healthchecks; tini: PID 1 that forwards SIGTERM (a Celery worker's warm
# shutdown) and reaps the task processes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir /opt/airflow --create-home --shell /bin/bash airflow \
    && python -m venv /opt/venv

WORKDIR /opt/airflow

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The project's wheel, its dependency ranges checked against the pins (nothing new is installed),
# then the DAG files: no source tree, no plugins folder of ours (the plugin is an entry point).
COPY --from=wheel /wheels/ /tmp/wheels/
RUN pip install --constraint requirements.txt /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && python -c "import importlib.metadata as m; print(*(m.version(d) for d in ('detection-model-pipeline', 'apache-airflow', 'apache-airflow-providers-celery', 'celery')))" \
    && mkdir -p /opt/airflow/logs /opt/airflow/plugins /opt/airflow/model_registry /opt/airflow/state
COPY dags/ ./dags/
RUN chown -R "${AIRFLOW_UID}:0" /opt/airflow \
    && chmod -R g+rwX /opt/airflow

USER ${AIRFLOW_UID}
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["airflow", "version"]
