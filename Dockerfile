# surge's image: one `surge` command, for the coordinator and for every worker.
#
#   docker build -t <registry>/surge:<tag> .
#
# The scenario is not baked in: the coordinator reads it from a mounted file (a ConfigMap in
# deploy/kubernetes/) and sends it, with its local imports, to the workers over the wire.
FROM python:3.11-slim

# No .pyc files in the image or at run time (the manifests mount the root file system
# read-only); unbuffered so that progress lines reach `kubectl logs` as they happen.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what `pip install .` reads: the build configuration (setup.cfg takes the long
# description from README.md) and the package. Every dependency ships a wheel for this base,
# so no compiler is needed.
WORKDIR /build
COPY pyproject.toml setup.cfg README.md ./
COPY surge ./surge
RUN pip install . && rm -rf /build

# A fixed numeric UID, so that Kubernetes' runAsNonRoot can check it; the manifests run as
# the same one.
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/surge --shell /usr/sbin/nologin surge
USER 10001:10001
WORKDIR /home/surge

EXPOSE 5557
ENTRYPOINT ["surge"]
CMD ["--help"]
