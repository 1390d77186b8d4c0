# Stand-ins for Docker Hub's redis and postgres images where Docker Hub cannot be reached, built from
# Debian's packages: the commands, environment, paths and users that compose.yaml relies on.
#   docker build -f tests/docker/services.Dockerfile --target redis --build-arg BASE=… tests/docker

ARG BASE=python:3.12-slim-bookworm

FROM ${BASE} AS redis
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* && install -d -o redis -g redis /data
WORKDIR /data
CMD ["redis-server"]

FROM ${BASE} AS postgres
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \
    && apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \
    && install -d -o postgres -g postgres /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
ENTRYPOINT ["postgres-entrypoint.sh"]
CMD ["postgres"]
