"""`greenlane trigger`: start a DAG run on a remote Airflow through its REST API (e.g. from CI).

Airflow 3's API: POST {url}/auth/token with {"username", "password"} returns a JWT
(`access_token`); POST {url}/api/v2/dags/{dag_id}/dagRuns with {"logical_date": null,
"conf": {...}} creates a run; GET .../dagRuns/{run_id} reports its state. Credentials
come from the environment so they never appear in a CI log or a shell history.
Standard library HTTP only: this command runs in thin CI images too.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from tasks.errors import GreenlaneError

USER_ENV = "GREENLANE_AIRFLOW_USER"
PASSWORD_ENV = "GREENLANE_AIRFLOW_PASSWORD"
URL_ENV = "GREENLANE_AIRFLOW_URL"
FINISHED = {"success", "failed"}


class RunFailed(GreenlaneError):
    """The DAG run ended in a state other than success, or did not end in time."""

    exit_code = 1


def add_parser(sub) -> None:
    p = sub.add_parser("trigger", help="start a DAG run on a remote Airflow (REST API), optionally wait for it")
    p.add_argument("--dag", default="greenlane_retrain", help="DAG id (default: greenlane_retrain)")
    p.add_argument("--conf", default="{}", help='run conf, a JSON object, e.g. \'{"data_version": "v3", "git_sha": "abc1234"}\'')
    p.add_argument("--url", default=os.environ.get(URL_ENV),
                   help=f"Airflow api-server base URL, e.g. http://127.0.0.1:8080 (default: ${URL_ENV})")
    p.add_argument("--insecure", action="store_true",
                   help="allow plain http:// to a host other than this machine (the password crosses the network "
                        "in clear)")
    p.add_argument("--run-id", help="dag_run_id to use (default: Airflow generates one)")
    p.add_argument("--unpause", action="store_true", help="unpause the DAG first if it is paused")
    p.add_argument("--wait", action="store_true", help="poll until the run finishes; exit 1 unless it succeeded")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait with --wait (default: 3600)")
    p.add_argument("--poll-interval", type=float, default=10.0, help="seconds between polls with --wait (default: 10)")
    p.set_defaults(func=handle)


def handle(args) -> int:
    conf = parse_conf(args.conf)
    if not args.url:
        raise GreenlaneError(f"no Airflow URL: pass --url (e.g. http://127.0.0.1:8080) or set ${URL_ENV}")
    check_url(args.url, insecure=args.insecure)
    client = AirflowClient(args.url, *credentials_from_env())
    client.login()

    dag = client.get_dag(args.dag)
    if dag.get("is_paused"):
        if not args.unpause:
            raise GreenlaneError(
                f"DAG {args.dag!r} is paused, so a run would stay queued: unpause it in the Airflow UI or pass --unpause"
            )
        client.request("PATCH", f"/api/v2/dags/{_q(args.dag)}", {"is_paused": False})

    run = client.trigger(args.dag, conf, args.run_id)
    run_id = run["dag_run_id"]
    print(f"triggered {args.dag} run {run_id} ({run['state']})", file=sys.stderr)
    if args.wait:
        run = client.wait(args.dag, run_id, timeout_s=args.timeout, poll_s=args.poll_interval)
    print(json.dumps({"dag_id": args.dag, "dag_run_id": run_id, "state": run["state"], "conf": run.get("conf", conf)}))
    if args.wait and run["state"] != "success":
        failed = client.failed_tasks(args.dag, run_id)
        detail = f"; failed tasks: {', '.join(failed)}" if failed else ""
        raise RunFailed(f"DAG {args.dag!r} run {run_id} finished in state {run['state']!r}{detail}")
    return 0


def parse_conf(text: str) -> dict:
    try:
        conf = json.loads(text)
    except json.JSONDecodeError as err:
        raise GreenlaneError(f"--conf is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    if not isinstance(conf, dict):
        raise GreenlaneError(f"--conf must be a JSON object ({{...}}), got {type(conf).__name__}")
    return conf


def check_url(url: str, insecure: bool = False) -> None:
    """Refuse to send the password in clear text to another machine unless the user said so."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GreenlaneError(f"--url {url!r} is not an http(s) URL; pass e.g. https://airflow.example.org")
    if parts.scheme == "http" and not insecure and not _is_loopback(parts.hostname):
        raise GreenlaneError(
            f"refusing plain http to {parts.hostname}: the Airflow password would cross the network unencrypted; "
            f"use https:// (or an SSH tunnel to 127.0.0.1), or pass --insecure"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always this machine
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name other than localhost may resolve anywhere
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def credentials_from_env() -> tuple[str, str]:
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    missing = [name for name, value in ((USER_ENV, user), (PASSWORD_ENV, password)) if not value]
    if missing:
        raise GreenlaneError(f"Airflow credentials missing: set {' and '.join(missing)} in the environment")
    return user, password


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


class AirflowClient:
    """The handful of Airflow 3 REST calls `trigger` needs; every failure becomes a GreenlaneError."""

    def __init__(self, url: str, user: str, password: str, timeout_s: float = 30.0):
        self.url = url.rstrip("/")
        self.user, self.password = user, password
        self.timeout_s = timeout_s  # per HTTP request
        self.token: str | None = None

    def login(self) -> None:
        body = self._send("POST", "/auth/token", {"username": self.user, "password": self.password}, auth=False)
        self.token = body["access_token"]

    def get_dag(self, dag_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{_q(dag_id)}", dag_id=dag_id)

    def trigger(self, dag_id: str, conf: dict, run_id: str | None = None) -> dict:
        payload = {"logical_date": None, "conf": conf}
        if run_id:
            payload["dag_run_id"] = run_id
        return self.request("POST", f"/api/v2/dags/{_q(dag_id)}/dagRuns", payload, dag_id=dag_id)

    def wait(self, dag_id: str, run_id: str, timeout_s: float, poll_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        last_state = None
        while True:
            run = self.request("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}", dag_id=dag_id)
            if run["state"] != last_state:
                print(f"{dag_id} run {run_id}: {run['state']}", file=sys.stderr)
                last_state = run["state"]
            if run["state"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise RunFailed(
                    f"DAG {dag_id!r} run {run_id} still {run['state']!r} after {timeout_s:.0f} s "
                    f"(--timeout); is a worker serving its queue?"
                )
            time.sleep(poll_s)

    def failed_tasks(self, dag_id: str, run_id: str) -> list[str]:
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances"
        try:
            tis = self.request("GET", path, dag_id=dag_id)["task_instances"]
        except GreenlaneError:
            return []  # the run's state is the answer; task detail is a courtesy
        return sorted({ti["task_id"] for ti in tis if ti.get("state") in {"failed", "upstream_failed"}})

    def request(self, method: str, path: str, payload: dict | None = None, dag_id: str | None = None) -> dict:
        try:
            return self._send(method, path, payload, dag_id=dag_id)
        except _Unauthorized:
            self.login()  # the JWT expired during a long --wait; one fresh token, then give up
            return self._send(method, path, payload, dag_id=dag_id)

    def _send(self, method: str, path: str, payload: dict | None, auth: bool = True, dag_id: str | None = None) -> dict:
        headers = {"Accept": "application/json"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            raise self._http_error(err, method, path, auth, dag_id) from None
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, ConnectionRefusedError):
                raise GreenlaneError(
                    f"cannot reach Airflow at {self.url}: connection refused; is the api-server running and is --url right?"
                ) from None
            raise GreenlaneError(f"cannot reach Airflow at {self.url}: {reason}") from None
        except (TimeoutError, ConnectionError) as err:
            raise GreenlaneError(f"cannot reach Airflow at {self.url}: {err}") from None
        except json.JSONDecodeError:
            raise GreenlaneError(
                f"{method} {self.url}{path} did not answer JSON; is {self.url} an Airflow 3 api-server?"
            ) from None

    def _http_error(self, err: urllib.error.HTTPError, method: str, path: str, auth: bool, dag_id: str | None):
        detail = _detail(err)
        if err.code == 401 and not auth:
            return GreenlaneError(
                f"Airflow at {self.url} rejected the credentials of user {self.user!r} (401): "
                f"check {USER_ENV} and {PASSWORD_ENV}"
            )
        if err.code == 401:
            return _Unauthorized(f"Airflow at {self.url} refused the API token (401): {detail}")
        if err.code == 403:
            return GreenlaneError(f"user {self.user!r} is not allowed to {method} {path} (403): {detail}")
        if err.code == 404 and dag_id is not None:
            return GreenlaneError(
                f"DAG {dag_id!r} not found at {self.url} (404): is the DAG file deployed, parsed without errors, "
                f"and is the id spelled right?"
            )
        if err.code == 404:
            return GreenlaneError(f"{self.url}{path} not found (404); is {self.url} an Airflow 3 api-server?")
        if err.code == 409:
            return GreenlaneError(f"Airflow refused the run (409 conflict): {detail}")
        return GreenlaneError(f"Airflow answered {err.code} to {method} {path}: {detail}")


class _Unauthorized(GreenlaneError):
    """A 401 on an authenticated call: the token expired or was refused."""


def _detail(err: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(err.read() or b"{}")
    except (json.JSONDecodeError, OSError):
        return err.reason or ""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return detail if isinstance(detail, str) else json.dumps(detail)
