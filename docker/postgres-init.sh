#!/usr/bin/env bash
# First start of the PostgreSQL container (docker-entrypoint-initdb.d): two databases, each with an owner
# of its own. Airflow's metadata and the warehouse never share a database, so either can move to a
# server of its own later (README, "Deploy and scale out").
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v airflow_password="$AIRFLOW_DB_PASSWORD" -v warehouse_password="$WAREHOUSE_DB_PASSWORD" <<'SQL'
create role airflow login password :'airflow_password';
create database airflow owner airflow;
create role routerloop login createrole password :'warehouse_password';
create database warehouse owner routerloop;
SQL
