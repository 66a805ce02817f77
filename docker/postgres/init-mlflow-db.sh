#!/bin/sh
# Runs once, when the postgres volume is first initialized: a second database for MLflow's tracking store,
# owned by the same user as Airflow's metadata database.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -c "CREATE DATABASE mlflow OWNER \"$POSTGRES_USER\";"
