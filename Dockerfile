# Sereno in a container: `docker build . -t sereno`, then
# `docker run -it --rm -v "$PWD/sample.json:/data/sample.json" sereno /data/sample.json`
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/sereno/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY sereno ./sereno
# A virtual environment works on every Python base image, including ones whose system Python
# refuses a system-wide pip install.
RUN python3 -m venv /opt/sereno \
    && /opt/sereno/bin/pip install --no-cache-dir . \
    && rm -rf /src

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin sereno \
    && install -d -o sereno -g sereno /var/lib/sereno
USER sereno
# rule-engine's parser tables, built once here rather than on every start of a container
RUN sereno check > /dev/null
WORKDIR /data
# `sereno serve --db /var/lib/sereno/sereno.db` keeps its state here: mount a volume on it
VOLUME /var/lib/sereno
EXPOSE 8080

ENTRYPOINT ["sereno"]
CMD ["--help"]
