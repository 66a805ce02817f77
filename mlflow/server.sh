#!/bin/sh
# MLflow tracking server of greenlane's stack (docker/mlflow/Dockerfile runs this). The flags live here,
# the values come from the environment that docker-compose.yml sets.
#   MLFLOW_BACKEND_STORE_URI       runs and registry (PostgreSQL in the stack); required
#   MLFLOW_ARTIFACTS_DESTINATION   where the server stores artifacts it proxies (a volume); default /mlartifacts
#   MLFLOW_ALLOWED_HOSTS           Host headers accepted (MLflow's DNS-rebinding guard): the compose service
#                                  name for the workers, localhost for the published 127.0.0.1 port
# The server listens on every interface inside its container; compose publishes it on 127.0.0.1 only.
set -eu
exec mlflow server \
  --backend-store-uri "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI}" \
  --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-/mlartifacts}" \
  --serve-artifacts \
  --host "${MLFLOW_HOST:-0.0.0.0}" \
  --port "${MLFLOW_PORT:-5000}" \
  --allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-mlflow,mlflow:5000,localhost,localhost:5000,127.0.0.1,127.0.0.1:5000}"
