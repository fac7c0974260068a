#!/usr/bin/env python3
"""Cross-file consistency checks for StuffMart's deployment files (no Docker engine, no cluster).

scripts/validate-deploy.sh checks each file on its own with standard tools (docker compose config,
check-jsonschema, kubernetes-validate); this script checks that the files agree with each other and
with the code:

  binaries   every service crate is built and installed by the Dockerfile, runs in compose and has a
             Kubernetes Deployment; every command names a binary the image installs
  variables  every row of README's configuration table that applies to a service is set for it (or
             is a deliberate default below); nothing sets a variable that no code and no row knows
  ports      EXPOSE, PORT / HEALTH_PORT, compose health checks and published port, containerPorts,
             probes (/healthz, /readyz), Services, Ingress, skaffold port-forward
  URLs       AMQP_URL / MONGODB_URL name services that exist (and that compose waits for) and the
             replica set MongoDB runs
  k8s        what `kubectl kustomize` renders for deploy/k8s and deploy/k8s/dev, patches and
             generators included: replicas, resources, Secret and ConfigMap keys, the namespace's Pod
             Security level, Ingress settings for Socket.IO and for uploads
  files      delivered files (compose and every kustomization): ms-router has OBJECT_STORE_URL
             (s3://bucket) and its S3 credentials from a Secret (compose: from the environment, .env);
             the endpoint is a service that is waited for, whose bucket is created and whose account is
             the router's; ms-router and ms-stuff get DOWNLOAD_LINK_KEY from one source, a key of at
             least 32 bytes (never the public dev key in production); no other service gets the S3
             settings or the link key; the Ingress that serves the upload routes takes MAX_FILE_BYTES
  others     .dockerignore (pathspec) keeps what the build needs; .env.example feeds compose; Rust and
             Node versions of the Dockerfile and the workflow; syntax of Dockerfile RUN (sh -n),
             workflow run: blocks (bash -n) and mongosh --eval snippets (node)

  check_deploy.py [--quiet]      run the checks (exit 1 on any error)
  check_deploy.py --self-test    break copies of the files on purpose; each break must be reported
  check_deploy.py --compose-env SERVICE [--local] [--set K=V]
      print the environment compose gives SERVICE; --local: broker on 127.0.0.1, SQLite,
      files in a directory under DATA_DIR instead of MinIO, repository paths
      (scripts/smoke-compose-env.sh starts the binaries with it)

Needs PyYAML, pathspec and kubectl; VALIDATE_DEPLOY_ALLOW_SKIP=1 makes a missing kubectl a warning.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

IMAGE_REPO = "stuffmart"
ROUTER = "ms-router"
ALLOW_SKIP = os.environ.get("VALIDATE_DEPLOY_ALLOW_SKIP") == "1"

# README variables left to their default on purpose, with the reason.
DELIBERATE_DEFAULTS = {
    "AMQP_PREFIX": "empty: deployments use unprefixed names (the prefix isolates test runs)",
    "BIND_ADDR": "0.0.0.0, what a container needs",
    "STRIPE_API_BASE": "tests point it at a mock; deployments use Stripe's",
    "STRIPE_TIMEOUT_MS": "tuning knob, default is fine",
    "PAYMENT_ORDER_WAIT_MS": "tuning knob, default is fine",
    "MAX_PAYLOAD_BYTES": "tuning knob, default is fine",
    "SIGNIN_MAX_ATTEMPTS": "tuning knob, default is fine",
    "SIGNIN_WINDOW_SECONDS": "tuning knob, default is fine",
    "SIGNUP_MAX_ATTEMPTS": "tuning knob, default is fine",
    "SIGNUP_WINDOW_SECONDS": "tuning knob, default is fine",
    "AUTH_THROTTLE_MAX_KEYS": "tuning knob, default is fine (~10 MB at the cap)",
    "TRUSTED_PROXIES": "Kubernetes trusts the cluster's private networks with TRUST_PROXY=true",
    "ARGON2_MAX_CONCURRENT": "the default follows the pod's CPU quota and memory limit",
    "ARGON2_WAIT_MS": "tuning knob, default is fine (below RPC_TIMEOUT_MS)",
    "MAX_CONNECTIONS": "per-replica socket limit; the default (20000) fits the pod limits",
    "MAX_CONNECTIONS_PER_ADDRESS": "tuning knob, default is fine (raise it behind a campus NAT)",
    "SOCKET_RATE": "tuning knob, the contract's default (20 events a second)",
    "SOCKET_BURST": "tuning knob, the contract's default (60 events at once)",
    "SOCKET_WRITE_RATE": "tuning knob, default is fine",
    "SOCKET_WRITE_BURST": "tuning knob, default is fine",
    "SOCKET_MAX_IN_FLIGHT": "tuning knob, default is fine",
    "ORPHAN_SWEEP_SECONDS": "tuning knob, hourly sweeps of hour-old orphans are fine",
    "RECONCILE_SECONDS": "tuning knob, settling lost charge answers every 5 minutes is fine",
    "AMQP_PASSWORD_FILE": "compose only; Kubernetes gives each pod its whole AMQP_URL from its key of stuffmart-amqp",
    "ADMIN_EMAILS": "development convenience; deployments grant admins with `ms-user admin grant EMAIL`",
    "REFRESH_GRACE_SECONDS": "tuning knob, 10 s covers a lost reply (RPC_TIMEOUT_MS) and a retry",
}
# Set by deployment files although README's table does not list them.
KNOWN_EXTRA_VARS = {
    "HEALTH_PORT": "backend health port (/healthz, /readyz) for probes",
    "STATIC_DIR": "where ms-router finds the built web client",
    "RUST_LOG": "log filter (README mentions it with LOG_FORMAT)",
    # ms-router's S3 store: the object_store crate's AmazonS3Builder::from_env reads them.
    "AWS_ACCESS_KEY_ID": "S3 credentials of OBJECT_STORE_URL (object_store crate)",
    "AWS_SECRET_ACCESS_KEY": "S3 credentials of OBJECT_STORE_URL (object_store crate)",
    "AWS_REGION": "S3 region (object_store crate)",
    "AWS_ENDPOINT": "S3-compatible endpoint such as MinIO (object_store crate)",
    "AWS_ALLOW_HTTP": "plain-HTTP S3 endpoint allowed (object_store crate)",
}
# Which services a README variable applies to when neither its row ("(ms-...)") nor the code (only
# some services' crates read it) says.
BACKEND_ONLY = {"MONGODB_URL", "DATA_DIR", "HEALTH_PORT"}
SERVICE_SCOPES = {"PORT": {ROUTER}, "ORDER_HOLD_SECONDS": {"ms-order"}, "STRIPE_SECRET_KEY": {"ms-payment"},
                  "STRIPE_WEBHOOK_SECRET": {"ms-payment"}, "STRIPE_PUBLISHABLE_KEY": {"ms-payment"},
                  "ADMIN_EMAILS": {"ms-user"}, "ACCESS_TOKEN_SECONDS": {"ms-user"},
                  "REFRESH_TOKEN_SECONDS": {"ms-user"}, "OBJECT_STORE_URL": {ROUTER}, "MAX_FILE_BYTES": {ROUTER},
                  "DOWNLOAD_LINK_SECONDS": {"ms-stuff"}, "DOWNLOAD_LINK_KEY": {ROUTER, "ms-stuff"},
                  **{v: {ROUTER} for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT",
                                           "AWS_ALLOW_HTTP")}}
ENV_EXAMPLE_REQUIRED = ["STRIPE_SECRET_KEY", "ORDER_HOLD_SECONDS", "STRIPE_PUBLISHABLE_KEY"]
PROBES = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
# Delivered files (docs/contract.md): ms-router alone holds the object store's settings and credentials;
# ms-stuff signs download links and ms-router checks them, with one shared key.
S3_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
LINK_KEY = "DOWNLOAD_LINK_KEY"
LINK_KEY_SERVICES = (ROUTER, "ms-stuff")
LINK_KEY_MIN_BYTES = 32
SOCKET_IO_PATH = "/socket.io/"
NGINX_DEFAULT_BODY = "1m"  # ingress-nginx's proxy-body-size when the annotation is absent
UPLOAD_ROUTE_RE = re.compile(r'\.route\(\s*"([^"]+)",\s*(?:post|put)\(')
MB_RE = re.compile(r"\bmc\s+mb\b(?:\s+--?[\w-]+)*\s+[\w.-]+/([\w.-]+)")

ENV_READ_RE = re.compile(r'(?:env_or|env_opt|env_parse|env::var|env::var_os)\s*\(\s*"([A-Z][A-Z0-9_]*)"')
INCLUDE_RE = re.compile(r'include_(?:str|bytes)!\s*\(\s*"([^"]+)"')
INTERP_RE = re.compile(r"\$\$|\$\{([A-Za-z_]\w*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)")
LOCAL_URL_RE = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)(/[^\s\"']*)?")


# --------------------------------------------------------------------------------------------------
# Reading the files
def load_yaml(path: Path):
    """The YAML document in path; {} when there is no such file."""
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def as_argv(cmd) -> list[str]:
    if cmd is None:
        return []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[dict]]:
    """(global ARGs, stages as {"name", "base", "instr": [(INSTRUCTION, arguments)]})."""
    lines, buf = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):  # comment lines may sit inside a continued instruction
            buf += line[:-1] + " " if line.endswith("\\") else line
            if not line.endswith("\\"):
                lines.append(buf)
                buf = ""
    args: dict[str, str] = {}
    stages: list[dict] = []
    for instr, _, rest in (line.partition(" ") for line in lines):
        if instr.upper() == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            stages.append({"name": parts[2] if len(parts) > 2 else str(len(stages)), "base": parts[0], "instr": []})
        elif stages:
            stages[-1]["instr"].append((instr.upper(), rest.strip()))
        elif instr.upper() == "ARG":
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip().strip('"')
    return args, stages


def stage_env(stages: list[dict], stage: dict) -> dict[str, str]:
    """ENV of a stage, including the stages it is built FROM."""
    by_name = {s["name"]: s for s in stages}
    chain = [stage]
    while chain[0]["base"] in by_name:
        chain.insert(0, by_name[chain[0]["base"]])
    env: dict[str, str] = {}
    for instr, args in (i for s in chain for i in s["instr"]):
        if instr == "ENV":
            tokens = shlex.split(args)  # ENV K=V K2=V2, or the old ENV K V
            env.update([t.split("=", 1) for t in tokens if "=" in t] if "=" in tokens[0]
                       else [(tokens[0], " ".join(tokens[1:]))])
    return env


def expand(text: str, values: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        return values.get(m.group(1) or m.group(3), m.group(0) if m.group(2) is None else m.group(2))
    return re.sub(r"\$\{([A-Za-z_]\w*)(?::-([^}]*))?\}|\$([A-Za-z_]\w*)", sub, text)


def parse_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        k, eq, v = line.strip().partition("=")
        if eq and not k.startswith("#"):
            v = v.strip()
            out[k.strip()] = v[1:-1] if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'" else v
    return out


def interpolate(value, env: dict[str, str], used: set[str]):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default} and $$, everywhere in value."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, used) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, used) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, default = m.group(1) or m.group(4), m.group(2), m.group(3)
        used.add(name)
        val = env.get(name)
        if op == ":-":
            return val or default
        if op == "-":
            return default if val is None else val
        return val or ""
    return INTERP_RE.sub(sub, value)


def load_compose(root: Path) -> tuple[dict, set[str]]:
    """docker-compose.yml interpolated with .env.example, and the variables it uses."""
    used: set[str] = set()
    return interpolate(load_yaml(root / "docker-compose.yml"), parse_env_file(root / ".env.example"), used), used


def service_env(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict(str(item).partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def is_object_store_var(var: str) -> bool:
    """OBJECT_STORE_URL and the AWS_* variables the object_store crate reads: ms-router's alone."""
    return var == "OBJECT_STORE_URL" or var.startswith("AWS_")


def s3_bucket(url: str | None) -> str | None:
    m = re.fullmatch(r"s3://([^/]+)(?:/.*)?", (url or "").strip())
    return m.group(1) if m else None


def link_key_bytes(text: str) -> int | None:
    """Length of a DOWNLOAD_LINK_KEY as ms-common reads it (hex, else standard base64); None: neither."""
    t = text.strip()
    if t and len(t) % 2 == 0 and re.fullmatch(r"[0-9a-fA-F]+", t):
        return len(t) // 2
    try:
        return len(base64.b64decode(t, validate=True)) if t else None
    except ValueError:
        return None


def nginx_size(value: str) -> int | None:
    """Bytes of an nginx size (0: unlimited, returned as -1); None when it does not parse."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value.strip())
    if not m:
        return None
    n = int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[m.group(2).lower()]
    return -1 if n == 0 else n


def ingress_route(ingresses: list[dict], host: str | None, path: str) -> tuple[dict, dict] | None:
    """(Ingress, path entry) that ingress-nginx picks for host + path: Exact first, else the longest
    Prefix (whole path segments), over every Ingress of that host."""
    best, best_key = None, None
    for ing in ingresses:
        for rule in ing["spec"].get("rules") or []:
            if rule.get("host") not in (host, None):
                continue
            for p in (rule.get("http") or {}).get("paths") or []:
                pp, kind = p.get("path", "/"), p.get("pathType", "Prefix")
                if kind == "Exact":
                    hit = path == pp
                else:
                    stem = pp.rstrip("/")
                    hit = stem == "" or path == stem or path.startswith(stem + "/") or (
                        kind != "Prefix" and path.startswith(pp))
                key = (kind == "Exact", len(pp))
                if hit and (best_key is None or key > best_key):
                    best, best_key = (ing, p), key
    return best


def sh_script(argv: list[str]) -> str | None:
    """The script of an `sh -c SCRIPT` (or -ec, -euc, ...) command line."""
    if len(argv) >= 3 and os.path.basename(argv[0]) in ("sh", "bash", "ash", "dash") and \
            re.fullmatch(r"-[a-z]*c", argv[1]):
        return argv[2]
    return None


def url_hosts(url: str) -> list[str]:
    return [h.rsplit(":", 1)[0] for h in urlsplit(url).netloc.rsplit("@", 1)[-1].split(",") if h]


def kustomize(directory: Path) -> tuple[list[dict], str]:
    """What `kubectl kustomize` renders: (resources, error message)."""
    r = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    if r.returncode:
        return [], re.sub(r"^E\d+ [\d:.]+\s+\d+ \S+\] ", "", r.stderr.strip())
    return [d for d in yaml.safe_load_all(r.stdout) if d], ""


def kustomization_refs(kdir: Path) -> set[Path]:
    """Files and directories a kustomization.yaml refers to (resources, components, patch files)."""
    k = load_yaml(kdir / "kustomization.yaml")
    refs = (k.get("resources") or []) + (k.get("components") or []) + (k.get("patchesStrategicMerge") or [])
    refs += [p["path"] for p in k.get("patches") or [] if isinstance(p, dict) and "path" in p]
    return {(kdir / r).resolve() for r in refs}


def secret_values(secret: dict) -> dict[str, str]:
    """A rendered Secret's values, data decoded."""
    values = {k: base64.b64decode(v or "").decode() for k, v in (secret.get("data") or {}).items()}
    values.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    return values


def of_kind(docs: list[dict], *kinds: str) -> list[dict]:
    return [d for d in docs if d.get("kind") in kinds]


def find(docs: list[dict], kind: str, name: str) -> dict | None:
    return next((d for d in of_kind(docs, kind) if d["metadata"]["name"] == name), None)


def selects(selector: dict, workload: dict) -> bool:
    labels = workload["spec"]["template"]["metadata"].get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def mongosh_snippets(node, out: list[str]) -> list[str]:
    """The JavaScript of every `mongosh ... --eval JS` command list in a YAML tree."""
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        if "mongosh" in node and "--eval" in node[:-1]:
            js = str(node[node.index("--eval") + 1])
            out += [] if js in out else [js]
        for v in node:
            mongosh_snippets(v, out)
    return out


# --------------------------------------------------------------------------------------------------
class Checks:
    """Every check, one method per file or group of files; run() calls them in order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []

    def error(self, where: str, msg: str) -> None:
        self.errors.append(f"[{where}] {msg}")

    def require(self, ok, where: str, msg: str) -> bool:
        """An error unless ok; returns whether ok."""
        if not ok:
            self.error(where, msg)
        return bool(ok)

    def warn(self, where: str, msg: str) -> None:
        self.warnings.append(f"[{where}] {msg}")

    def ok(self, where: str, msg: str) -> None:
        self.notes.append(f"[{where}] {msg}")

    def print(self, quiet: bool = False) -> None:
        for prefix, lines in (("ok   ", [] if quiet else self.notes), ("WARN ", self.warnings),
                              ("ERROR", self.errors)):
            for line in lines:
                print(f"  {prefix} {line}")

    def run(self) -> Checks:
        for check in (self.code, self.dockerfile, self.dockerignore, self.compose, self.env_example,
                      self.kubernetes, self.skaffold, self.workflow, self.embedded_commands):
            check()
        return self

    # ----------------------------------------------------------------------------------------------
    def code(self) -> None:
        """The workspace (Cargo.toml), the variables its code reads and README's configuration table."""
        self.packages: dict[str, tuple[Path, set[str]]] = {}  # name -> (directory, binaries)
        members = tomllib.loads((self.root / "Cargo.toml").read_text())["workspace"]["members"]
        for d in sorted({p for m in members for p in self.root.glob(m) if (p / "Cargo.toml").is_file()}):
            manifest = tomllib.loads((d / "Cargo.toml").read_text())
            name = manifest["package"]["name"]
            bins = {b["name"] for b in manifest.get("bin", [])} | {b.stem for b in d.glob("src/bin/*.rs")}
            bins |= {b.parent.name for b in d.glob("src/bin/*/main.rs")}
            self.packages[name] = (d, bins | ({name} if (d / "src/main.rs").is_file() else set()))
        self.services = sorted(n for n, (_, bins) in self.packages.items() if n.startswith("ms-") and n in bins)
        self.require(self.services, "workspace", "no service crates (ms-*/src/main.rs)")
        self.code_vars: dict[str, set[str]] = {}  # variable -> packages reading it
        self.includes: list[tuple[Path, Path]] = []  # (source, file it include_str!s)
        for name, (d, _) in self.packages.items():
            for f in [*d.glob("src/**/*.rs"), *d.glob("build.rs")]:
                text = f.read_text(encoding="utf-8", errors="replace")
                for m in ENV_READ_RE.finditer(text):
                    self.code_vars.setdefault(m.group(1), set()).add(name)
                self.includes += [(f, (f.parent / m.group(1)).resolve()) for m in INCLUDE_RE.finditer(text)]
        self.require("HEALTH_PORT" in self.code_vars, "code",
                     "no crate reads HEALTH_PORT: backend probes would find no health server")
        self.readme: dict[str, set[str]] = {}  # variable -> the services its row names, "(ms-router)" or "(ms-a, ms-b)"
        readme, section = self.root / "README.md", False
        for line in readme.read_text(encoding="utf-8").splitlines() if readme.is_file() else []:
            if line.startswith("#"):
                section = bool(re.match(r"#+\s+Configuration\b", line))
            elif section and (m := re.match(r"\|\s*`([A-Z][A-Z0-9_]*)`", line)):
                # "(ms-router)" or "(ms-payment, ms-order)": the services the row names.
                self.readme[m.group(1)] = {svc for group in re.findall(r"\((ms-[a-z0-9, -]+)\)", line)
                                           for svc in re.split(r",\s*", group) if svc.startswith("ms-")}
        self.require(self.readme, "README", "no configuration table under a '## Configuration' heading")
        for v in sorted(set(self.code_vars) - set(self.readme) - set(KNOWN_EXTRA_VARS)):
            if not v.startswith(("SEED_", "TEST_")):
                self.warn("README", f"{v} is read by {', '.join(sorted(self.code_vars[v]))} but is not in "
                          "the configuration table")
        self.ok("workspace", f"service crates: {', '.join(self.services)}")

    def applies_to(self, var: str, service: str) -> bool:
        if self.readme[var]:
            return service in self.readme[var]
        readers = self.code_vars.get(var, set())
        if readers and "ms-common" not in readers:
            return service in readers
        if var in SERVICE_SCOPES:
            return service in SERVICE_SCOPES[var]
        return service != ROUTER or var not in BACKEND_ONLY

    def env_coverage(self, where: str, effective: dict[str, dict], explicit: dict[str, dict]) -> None:
        """effective: service binary -> the env it runs with; explicit: unit -> the env it sets itself."""
        for binary, env in sorted(effective.items()):
            missing = [v for v in self.readme
                       if self.applies_to(v, binary) and v not in env and v not in DELIBERATE_DEFAULTS]
            self.require(not missing, f"{where}:{binary}", "README variables not set (and not deliberately "
                         f"defaulted in check_deploy.py): {', '.join(missing)}")
        known = set(self.readme) | set(self.code_vars) | set(KNOWN_EXTRA_VARS)
        for unit, env in sorted(explicit.items()):
            for var in sorted(v for v in env if v not in known and not v.startswith("SEED_")):
                self.error(f"{where}:{unit}", f"sets {var}, which no README row and no code knows (typo?)")

    def health_port(self, where: str, binary: str, env: dict[str, str]) -> int | None:
        """The port a service answers /healthz and /readyz on: PORT (ms-router) or HEALTH_PORT."""
        var = "PORT" if binary == ROUTER else "HEALTH_PORT"
        if not self.require(env.get(var, "").isdigit(), where, f"{var} is not a port number ({env.get(var)!r})"):
            return None
        self.require(not self.expose or int(env[var]) in self.expose, where,
                     f"{var}={env[var]} is not EXPOSEd by the Dockerfile ({sorted(self.expose)})")
        return int(env[var])

    # ----------------------------------------------------------------------------------------------
    def dockerfile(self) -> None:
        self.bins: set[str] = set()  # binaries the image installs
        self.expose: set[int] = set()
        self.image_env: dict[str, str] = {}
        self.uid: int | None = None
        self.default_cmd: list[str] = []
        self.copy_sources: list[str] = []
        self.run_lines: list[tuple[str, str]] = []  # (stage, RUN arguments)
        self.has_curl = False
        path = self.root / "Dockerfile"
        self.args, stages = parse_dockerfile(path) if path.is_file() else ({}, [])
        if not self.require(stages, "Dockerfile", "Dockerfile not found or without FROM"):
            return
        packages, builder = [], None
        for s in stages:
            env = stage_env(stages, s)
            for instr, args in s["instr"]:
                if instr in ("COPY", "ADD") and "--from=" not in args:
                    self.copy_sources += [t for t in shlex.split(args) if not t.startswith("--")][:-1]
                if instr != "RUN":
                    continue
                self.run_lines.append((s["name"], args))
                if (m := re.search(r"for\s+bin\s+in\s+(.+?);\s*do", args)) and "install" in args:
                    builder = s["name"]
                    self.bins |= set(expand(m.group(1), env).split())
                if "cargo build" in args and "--release" in args:
                    packages += re.findall(r"-p\s+([\w-]+)", expand(args, env))
                    packages += env.get("STUFFMART_PACKAGES", "").split() if "STUFFMART_PACKAGES" in args else []
        final = stages[-1]
        self.require(self.bins and packages, "Dockerfile", "cannot find 'cargo build --release' with its packages "
                     "and the binary install loop ('for bin in ...; do install ...')")
        self.require(not builder or any(f"--from={builder}" in a for i, a in final["instr"] if i == "COPY"),
                     "Dockerfile", f"the runtime stage copies nothing from {builder}")
        built: set[str] = set()
        for p in dict.fromkeys(packages):
            self.require(p in self.packages, "Dockerfile", f"builds package {p}, which is not in the workspace")
            built |= self.packages.get(p, (None, set()))[1]
        for b in sorted(self.bins - built):
            self.error("Dockerfile", f"installs binary {b}, which none of the built packages has")
        for svc in sorted(set(self.services) - self.bins):
            self.error("Dockerfile", f"service binary {svc} is not built and installed in the image")

        self.image_env = stage_env(stages, final)
        user, static_dest, cmd, entrypoint = "", "", [], []
        for instr, args in final["instr"]:
            if instr == "EXPOSE":
                self.expose |= {int(p.split("/")[0]) for p in args.split()}
            elif instr == "USER":
                user = args.split(":")[0]
            elif instr in ("CMD", "ENTRYPOINT"):
                argv = json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]
                cmd, entrypoint = (argv, entrypoint) if instr == "CMD" else (cmd, argv)
            elif instr == "COPY" and "dist" in args:
                static_dest = shlex.split(args)[-1].rstrip("/")
            elif instr == "RUN" and re.search(r"\bcurl\b", args):
                self.has_curl = True
        self.default_cmd = entrypoint + cmd
        if self.require(user not in ("", "root", "0"), "Dockerfile", "the runtime stage runs as root (no USER)"):
            if user.isdigit():
                self.uid = int(user)
            else:
                self.warn("Dockerfile", f"USER {user} is a name; Kubernetes runAsNonRoot needs a numeric UID")
        static = self.image_env.get("STATIC_DIR", "")
        self.require(static.rstrip("/") == static_dest, "Dockerfile",
                     f"STATIC_DIR={static!r} but the web client is copied to {static_dest!r}")
        self.require((self.default_cmd or [""])[0] in self.bins, "Dockerfile",
                     f"default command {self.default_cmd} is not a binary the image installs")
        self.ok("Dockerfile", f"{len(stages)} stages; installs {', '.join(sorted(self.bins))}; "
                f"EXPOSE {' '.join(map(str, sorted(self.expose)))}; USER {user}")

    def dockerignore(self) -> None:
        """.dockerignore patterns are relative to the context root: gitignore patterns anchored with '/'."""
        try:
            import pathspec
        except ImportError:
            return self.error(".dockerignore", "needs pathspec (pip install pathspec; validate-deploy.sh does)")
        path = self.root / ".dockerignore"
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []
        patterns = [("!" if ln.startswith("!") else "") + "/" + ln.lstrip("!").strip().lstrip("/")
                    for ln in lines if ln and not ln.startswith("#")]
        if not self.require(patterns, ".dockerignore", "missing or empty (target/ and node_modules would be sent)"):
            return
        spec = pathspec.GitIgnoreSpec.from_lines(patterns)
        for must in ("target", ".git", "web-client/node_modules"):
            self.require(spec.match_file(must), ".dockerignore", f"{must} is not excluded from the build context")
        # Every workspace member's manifest and sources (cargo needs them all), Cargo.lock, COPY sources.
        needed = [["Cargo.toml"], ["Cargo.lock"]]
        needed += [[s.rstrip("/")] for s in self.copy_sources if s not in (".", "./")]
        needed += [[str(f.relative_to(self.root)) for f in [d / "Cargo.toml", *sorted(d.glob("src/**/*"))]
                    if f.is_file()] for d, _ in self.packages.values()]
        for files in needed:
            if excluded := [f for f in files if spec.match_file(f)]:
                more = f" (and {len(excluded) - 1} more files of that crate)" if len(excluded) > 1 else ""
                self.error(".dockerignore", f"{excluded[0]} is excluded, but the image build needs it{more}")
            else:
                self.require((self.root / files[0]).exists(), "Dockerfile", f"COPY source {files[0]} does not exist")
        for src, inc in self.includes:
            r = os.path.relpath(inc, self.root)
            self.require(not r.startswith("..") and not spec.match_file(r), ".dockerignore",
                         f"{src.relative_to(self.root)} includes {r}, which is not in the build context")
        self.ok(".dockerignore", f"{len(patterns)} patterns; sources, manifests and included files stay in")

    # ----------------------------------------------------------------------------------------------
    def compose(self) -> None:
        self.compose_bins: dict[str, str] = {}  # service binary -> compose service
        self.compose_env: dict[str, dict[str, str]] = {}  # app service -> the env it runs with
        self.dev_link_keys: set[str] = set()  # public DOWNLOAD_LINK_KEY defaults (compose, dev overlay)
        data, self.compose_vars = load_compose(self.root)
        services = data.get("services") or {}
        apps = {n: s for n, s in services.items()  # the services of our image
                if str(s.get("image", "")).startswith(IMAGE_REPO + ":") or "build" in s}
        self.compose_images = {str(s.get("image")) for s in apps.values()}
        if not self.require(apps, "compose", f"docker-compose.yml not found or no service runs {IMAGE_REPO}"):
            return
        self.require("name" not in data, "compose", "top-level 'name:' is rejected by docker-compose v1; remove it")
        for name, svc in apps.items():
            where = f"compose:{name}"
            self.require(str(svc.get("image")).startswith(IMAGE_REPO + ":"), where,
                         f"image {svc.get('image')!r} is not {IMAGE_REPO}:<tag> (one image for every service)")
            argv = as_argv(svc.get("entrypoint")) + as_argv(svc.get("command")) or self.default_cmd
            binary = (argv or [""])[0]
            self.require(binary in self.bins, where, f"command {argv} does not name a binary the Dockerfile "
                         f"installs ({', '.join(sorted(self.bins))})")
            if binary.startswith("ms-") and not svc.get("profiles"):
                self.require(binary not in self.compose_bins, where,
                             f"runs {binary}, like {self.compose_bins.get(binary)}")
                self.compose_bins[binary] = name
            self.compose_env[name] = {**self.image_env, **service_env(svc)}
        for svc_name in sorted(set(self.services) - set(self.compose_bins)):
            self.error("compose", f"service binary {svc_name} is not run by any compose service (without a profile)")

        for binary, name in sorted(self.compose_bins.items()):
            svc, where = apps[name], f"compose:{name}"
            if (port := self.health_port(where, binary, self.compose_env[name])) is None:
                continue
            test = as_argv((svc.get("healthcheck") or {}).get("test"))
            m = LOCAL_URL_RE.search(" ".join(test))
            if self.require(m, where, "no health check against http://127.0.0.1:<port>/..."):
                self.require(int(m.group(1)) == port and m.group(2) in ("/readyz", "/healthz"), where,
                             f"health check uses port {m.group(1)} and path {m.group(2)}, "
                             f"but the service answers /healthz and /readyz on {port}")
            self.require("curl" not in test or self.has_curl, where, "the health check runs curl, which the runtime "
                         "image does not install")
            published = [int(p["target"]) if isinstance(p, dict) else int(str(p).split("/")[0].rsplit(":", 1)[-1])
                         for p in svc.get("ports") or []]
            if binary == ROUTER:
                self.require(port in published, where, f"PORT={port} is not published (ports: {svc.get('ports')})")
            else:
                self.require(not published, where, f"publishes {svc.get('ports')}: only ms-router is to be reachable")

        replica_sets = self.replica_sets([(f"compose:{n}", as_argv(s.get("command")), s)
                                          for n, s in services.items()])
        for name, svc in apps.items():
            where, env, deps = f"compose:{name}", self.compose_env[name], svc.get("depends_on") or {}
            if not self.require(isinstance(deps, dict), where, "depends_on is a list, without conditions"):
                deps = {d: {} for d in deps}
            for dep, cond in deps.items():
                dep_svc = services.get(dep) or {}
                if (cond or {}).get("condition") == "service_completed_successfully":
                    # A one-shot job (bucket creation): it must end, not be restarted.
                    self.require(str(dep_svc.get("restart", "no")) == "no", where,
                                 f"waits for {dep} to complete, but {dep} has restart: {dep_svc.get('restart')}")
                    continue
                self.require((cond or {}).get("condition") == "service_healthy", where,
                             f"depends_on {dep} without condition: service_healthy (or service_completed_successfully "
                             "for a one-shot job)")
                self.require(dep_svc.get("healthcheck"), where,
                             f"waits for {dep} to be healthy, but {dep} has no healthcheck")
            for var in ("AMQP_URL", "MONGODB_URL", "AWS_ENDPOINT"):
                for host in url_hosts(env.get(var, "")):
                    target = next((s for s, d in services.items() if host in (s, d.get("hostname"))), None)
                    if self.require(target, where, f"{var} points at host {host!r}, which is no compose service"):
                        self.require(target in deps, where, f"{var} uses {target} but does not depend on it")
            self.mongo_url(where, env.get("MONGODB_URL"), replica_sets)
        self.env_coverage("compose", {b: self.compose_env[n] for b, n in self.compose_bins.items()},
                          {n: service_env(s) for n, s in apps.items()})
        raw = (load_yaml(self.root / "docker-compose.yml").get("services") or {})
        self.compose_files(services, apps, raw)
        self.ok("compose", f"{len(self.compose_bins)} services from the {IMAGE_REPO} image "
                f"({', '.join(sorted(self.compose_bins))}) + {', '.join(sorted(set(services) - set(apps)))}")

    def compose_files(self, services: dict, apps: dict, raw: dict) -> None:
        """Delivered files in compose: ms-router's object store, the shared link key, least privilege."""
        router = self.compose_bins.get(ROUTER)
        if router is None:
            return
        where, env = f"compose:{router}", self.compose_env[router]
        raw_env = {n: service_env(s) for n, s in raw.items() if isinstance(s, dict)}
        # (a) the object store: a bucket on S3-compatible storage, credentials from the environment.
        url = env.get("OBJECT_STORE_URL", "")
        bucket = s3_bucket(url)
        self.require(url, where, "no OBJECT_STORE_URL: uploads would land in the container's DATA_DIR (lost when "
                     "the container is re-created); want s3://bucket")
        self.require(not url or bucket, where, f"OBJECT_STORE_URL={url!r} is not s3://bucket[/prefix]")
        for var in S3_CREDENTIALS:
            if not self.require(env.get(var), where, f"no {var}: the S3 store would have no credentials"):
                continue
            self.require("${" in raw_env.get(router, {}).get(var, ""), where,
                         f"{var} is written into docker-compose.yml; take it from the environment (.env) like "
                         "the other secrets: ${VAR:-dev-only default}")
        endpoint = env.get("AWS_ENDPOINT", "")
        if endpoint.startswith("http://"):
            self.require(env.get("AWS_ALLOW_HTTP", "").lower() == "true", where,
                         f"AWS_ENDPOINT={endpoint} is plain HTTP but AWS_ALLOW_HTTP is not true: the S3 client refuses it")
        host = next(iter(url_hosts(endpoint)), None)
        store = next((s for s, d in services.items() if host in (s, d.get("hostname"))), None) if host else None
        if store:
            senv = service_env(services[store])
            for mine, theirs in zip(S3_CREDENTIALS, ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")):
                self.require(theirs not in senv or senv[theirs] == env.get(mine), where,
                             f"{mine} differs from {store}'s {theirs}: MinIO's root account is the router's S3 "
                             "account here, and every upload would be refused")
            deps = raw.get(router, {}).get("depends_on") or {}
            jobs = [d for d, c in deps.items() if isinstance(deps, dict) and
                    (c or {}).get("condition") == "service_completed_successfully"]
            made = {b for d in jobs for b in MB_RE.findall(" ".join(
                as_argv(services.get(d, {}).get("entrypoint")) + as_argv(services.get(d, {}).get("command"))))}
            self.require(not bucket or bucket in made, where,
                         f"{store} is the S3 endpoint, but no one-shot service that {router} waits for "
                         f"(condition: service_completed_successfully) creates bucket {bucket} with mc mb "
                         f"(found: {', '.join(sorted(made)) or 'none'})")
        # (b) one link key for the signer (ms-stuff) and the checker (ms-router).
        holders = {b: n for b, n in self.compose_bins.items() if b in LINK_KEY_SERVICES}
        sources = {b: raw_env.get(n, {}).get(LINK_KEY) for b, n in holders.items()}
        for b, n in sorted(holders.items()):
            if not self.require(sources[b], f"compose:{n}", f"no {LINK_KEY}: the containers share no DATA_DIR, so "
                                "each would make up its own key and every download link would be refused"):
                continue
            self.require("${" in sources[b], f"compose:{n}", f"{LINK_KEY} is written into docker-compose.yml; take "
                         "it from the environment (.env) with a dev-only default")
            value = self.compose_env[n].get(LINK_KEY, "")
            size = link_key_bytes(value)
            self.require(size and size >= LINK_KEY_MIN_BYTES, f"compose:{n}", f"{LINK_KEY} {value!r} is not hex or "
                         f"base64 of at least {LINK_KEY_MIN_BYTES} bytes: the service would refuse to start")
            self.dev_link_keys.add(value.strip())
        if len(set(sources.values())) > 1:
            self.error("compose", f"{LINK_KEY} differs between " + " and ".join(
                f"{holders[b]} ({sources[b]})" for b in sorted(sources)) + ": links ms-stuff signs would be refused "
                "by ms-router (use one ${VAR:-default}, e.g. a YAML anchor)")
        # (c) least privilege: no other service of the image gets the S3 settings or the link key.
        for name in sorted(apps):
            senv = service_env(apps[name])
            if name != router:
                for var in sorted(v for v in senv if is_object_store_var(v)):
                    self.error(f"compose:{name}", f"gets {var}: only {ROUTER} may hold the object store's settings "
                               "and credentials")
            if name not in holders.values() and LINK_KEY in senv:
                self.error(f"compose:{name}", f"gets {LINK_KEY}: only {' and '.join(LINK_KEY_SERVICES)} may hold it")
        self.ok("compose", f"files: {router} -> {url or '(no OBJECT_STORE_URL)'}"
                + (f" on {store}" if store else "") + f"; {LINK_KEY} shared by {', '.join(sorted(holders.values()))}")

    def replica_sets(self, units: list[tuple[str, list[str], dict]]) -> set[str]:
        """--replSet names of the MongoDB units [(where, argv, definition)]; each must call rs.initiate()."""
        names = set()
        for where, argv, definition in units:
            if "--replSet" in argv[:-1]:
                names.add(argv[argv.index("--replSet") + 1])
                self.require("rs.initiate" in json.dumps(definition), where,
                             "MongoDB runs --replSet but nothing calls rs.initiate()")
        return names

    def mongo_url(self, where: str, url: str | None, replica_sets: set[str]) -> None:
        name = (parse_qs(urlsplit(url).query).get("replicaSet") or [None])[0] if url else None
        self.require(not url or name in replica_sets, where, f"MONGODB_URL names replicaSet={name}, but MongoDB runs "
                     f"--replSet {', '.join(sorted(replica_sets)) or '(none)'} (transactions need a replica set)")

    def env_example(self) -> None:
        env = parse_env_file(self.root / ".env.example")
        for k in ENV_EXAMPLE_REQUIRED:
            self.require(k in env, ".env.example", f"{k} is missing")
        self.require(not env.get("STRIPE_SECRET_KEY"), ".env.example",
                     "STRIPE_SECRET_KEY must be empty in the example (never commit a key)")
        for k in sorted(set(env) - self.compose_vars):
            self.error(".env.example", f"{k} is not used by docker-compose.yml (it would have no effect)")
        self.ok(".env.example", ", ".join(sorted(env)))

    # ----------------------------------------------------------------------------------------------
    def kubernetes(self) -> None:
        """Renders, with kubectl, every kustomization that no other includes (deploy/k8s, deploy/k8s/dev)."""
        self.trees: dict[str, list[dict]] = {}  # kustomization directory -> rendered resources
        self.templates: dict[str, set[str]] = {}  # Secrets applied by hand (*.example.yaml) -> keys
        self.template_optional: dict[str, set[str]] = {}  # -> keys documented in comments (`# KEY: "..."`)
        self.template_values: dict[str, tuple[str, dict[str, str]]] = {}  # -> (file, stringData)
        base = self.root / "deploy" / "k8s"
        for t in sorted(base.rglob("*.example.yaml")):
            for chunk in re.split(r"(?m)^---\s*$", t.read_text(encoding="utf-8")):
                for d in of_kind([d for d in [yaml.safe_load(chunk)] if d], "Secret"):
                    name = d["metadata"]["name"]
                    self.templates[name] = set(d.get("data") or {}) | set(d.get("stringData") or {})
                    self.template_optional[name] = set(re.findall(r"(?m)^\s*#\s*([A-Z][A-Z0-9_]*):\s*\S", chunk))
                    self.template_values[name] = (str(t.relative_to(self.root)),
                                                  {k: str(v) for k, v in (d.get("stringData") or {}).items()})
                    for k, v in (d.get("stringData") or {}).items():
                        self.require(not re.search(r"sk_(live|test)_[A-Za-z0-9]{8,}", str(v)),
                                     f"k8s:{t.relative_to(self.root)}", f"{k} looks like a real Stripe key")
        kdirs = sorted(p.parent for p in base.rglob("kustomization.yaml"))
        if not self.require(base in kdirs, "k8s", "deploy/k8s/kustomization.yaml not found"):
            return
        referenced = set().union(*map(kustomization_refs, kdirs))
        for f in sorted(base.rglob("*.y*ml")):
            self.require(f.resolve() in referenced or f.name.startswith("kustomization") or ".example." in f.name,
                         "k8s", f"{f.relative_to(self.root)} is in no kustomization (a template? *.example.yaml)")
        for kdir in [k for k in kdirs if k == base or k.resolve() not in referenced]:
            label = str(kdir.relative_to(self.root))
            if not shutil.which("kubectl"):
                msg = "kubectl not found, so the kustomization cannot be rendered (apt-get install kubectl)"
                if ALLOW_SKIP:
                    self.warn(f"k8s:{label}", f"{msg}; skipped (VALIDATE_DEPLOY_ALLOW_SKIP=1)")
                else:
                    self.error(f"k8s:{label}", f"{msg}; VALIDATE_DEPLOY_ALLOW_SKIP=1 skips instead")
                continue
            docs, err = kustomize(kdir)
            if self.require(not err, f"k8s:{label}", f"kubectl kustomize failed: {err}"):
                self.trees[label] = docs
                self.k8s_tree(label, docs)
        # The public dev link keys (compose's default, the dev overlay's) never in production: the
        # production kustomization's Secrets and the templates it is applied with.
        prod = str(base.relative_to(self.root))
        found = [(f"k8s:{prod}:Secret/{s['metadata']['name']}", secret_values(s).get(LINK_KEY))
                 for s in of_kind(self.trees.get(prod, []), "Secret")]
        found += [(f"k8s:{f}:{n}", v.get(LINK_KEY)) for n, (f, v) in sorted(self.template_values.items())]
        for where, value in found:
            self.require(value is None or value.strip() not in self.dev_link_keys, where,
                         f"{LINK_KEY} is the public dev key of docker-compose.yml / the dev overlay: anyone could "
                         "sign download links; use openssl rand -hex 32")

    def secret_keys(self, docs: list[dict], name: str) -> set[str] | None:
        """Keys of a Secret: rendered in docs, else its template (*.example.yaml); None: neither."""
        if (s := find(docs, "Secret", name)) is None:
            return self.templates.get(name)
        return set(s.get("data") or {}) | set(s.get("stringData") or {})

    def container_env(self, where: str, c: dict, docs: list[dict]) -> dict[str, str]:
        """The variables a container gets (Secret values shown as <secret>); checks the references."""
        def secret_keys(name: str) -> set[str] | None:
            return self.secret_keys(docs, name)

        env: dict[str, str] = {}
        for src in c.get("envFrom") or []:
            if ref := src.get("configMapRef"):
                cm = find(docs, "ConfigMap", ref["name"])
                self.require(cm, where, f"envFrom ConfigMap {ref['name']} is not rendered")
                env.update({k: str(v) for k, v in ((cm or {}).get("data") or {}).items()})
            if ref := src.get("secretRef"):
                keys = secret_keys(ref["name"])
                self.require(keys is not None or ref.get("optional"), where,
                             f"envFrom Secret {ref['name']} is neither rendered nor templated")
                env.update(dict.fromkeys(keys or [], "<secret>"))
        for e in c.get("env") or []:
            vf = e.get("valueFrom") or {}
            if ref := vf.get("secretKeyRef"):
                documented = ref.get("optional") and find(docs, "Secret", ref["name"]) is None and \
                    ref["key"] in self.template_optional.get(ref["name"], ())
                self.require(documented or ref["key"] in (secret_keys(ref["name"]) or ()), where, f"{e['name']}: "
                             f"Secret {ref['name']} has no key {ref['key']} (or is neither rendered nor templated)")
            elif ref := vf.get("configMapKeyRef"):
                self.require(ref["key"] in ((find(docs, "ConfigMap", ref["name"]) or {}).get("data") or {}), where,
                             f"{e['name']}: ConfigMap {ref['name']} has no key {ref['key']}")
            env[e["name"]] = str(e.get("value", "<ref>" if vf else ""))
        return env

    def k8s_tree(self, label: str, docs: list[dict]) -> None:
        effective: dict[str, dict[str, str]] = {}  # service binary -> the env it runs with
        explicit: dict[str, dict[str, str]] = {}  # Deployment or ConfigMap -> the variables it sets
        for ns in sorted({d["metadata"].get("namespace") for d in docs} - {None}):
            self.require(find(docs, "Namespace", ns), f"k8s:{label}", f"namespace {ns} is not created here")
        deployments: dict[str, str] = {}  # service binary -> Deployment
        containers: dict[str, dict] = {}  # service binary -> its container
        for d in of_kind(docs, "Deployment"):
            pod = d["spec"]["template"]["spec"]
            app = [c for c in pod["containers"] if c.get("image", "").split(":")[0].split("/")[-1] == IMAGE_REPO]
            if not app:
                continue
            c = app[0]
            name = d["metadata"]["name"]
            where = f"k8s:{label}:{name}"
            argv = as_argv(c.get("command")) + as_argv(c.get("args")) or self.default_cmd
            binary = (argv or [""])[0]
            if not self.require(binary in self.bins, where, f"command {argv} names no binary the image installs"):
                continue
            self.require(binary not in deployments, where, f"runs {binary} like Deployment {deployments.get(binary)}")
            deployments[binary] = name
            containers[binary] = c
            replicas = d["spec"].get("replicas", 1)
            self.require(replicas >= 2, where, f"replicas is {replicas}, want at least 2")
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    self.require(r in ((c.get("resources") or {}).get(kind) or {}), where, f"no resources.{kind}.{r}")
            psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
            if self.uid is not None and csc.get("runAsUser", psc.get("runAsUser", self.uid)) != self.uid:
                self.warn(where, f"runAsUser differs from the image's USER {self.uid}")
            if not csc.get("readOnlyRootFilesystem"):
                self.error(where, "readOnlyRootFilesystem is not true")
            elif "/tmp" not in {m["mountPath"] for m in c.get("volumeMounts") or []}:
                self.warn(where, "read-only root filesystem without a /tmp volume")

            env = effective[binary] = {**self.image_env, **self.container_env(where, c, docs)}
            explicit[name] = {e["name"]: "" for e in c.get("env") or []}
            if (port := self.health_port(where, binary, env)) is None:
                continue
            self.require(any(p.get("containerPort") == port for p in c.get("ports") or []), where,
                         f"port {port} is not a containerPort")
            var = "PORT" if binary == ROUTER else "HEALTH_PORT"
            if binary in self.compose_bins:
                other = self.compose_env[self.compose_bins[binary]].get(var)
                self.require(other == env[var], where, f"{var}={env[var]} here but {other} in docker-compose.yml")
            named = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
            for probe, path in PROBES.items():
                if probe not in c:
                    self.require(probe == "startupProbe", where, f"no {probe}")
                elif self.require(hg := c[probe].get("httpGet"), where, f"{probe} is not an httpGet probe"):
                    self.require(hg.get("path") == path and named.get(hg.get("port"), hg.get("port")) == port, where,
                                 f"{probe} asks {hg.get('path')} on port {hg.get('port')}, want {path} on {port}")
        for svc in sorted(set(self.services) - set(deployments)):
            self.error(f"k8s:{label}", f"service binary {svc} has no Deployment")

        # Services select workloads and target their ports; the Ingress routes to Services.
        svc_ports: dict[str, set] = {}
        workloads = of_kind(docs, "Deployment", "StatefulSet")
        for s in of_kind(docs, "Service"):
            where = f"k8s:{label}:Service/{s['metadata']['name']}"
            targets = [w for w in workloads if selects(s["spec"].get("selector") or {}, w)]
            if not self.require(targets, where, f"selector {s['spec'].get('selector')} matches no workload"):
                continue
            cports = [p for c in targets[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []]
            ports = s["spec"].get("ports") or []
            svc_ports[s["metadata"]["name"]] = {p["port"] for p in ports} | {p.get("name") for p in ports}
            for tp in (p.get("targetPort", p["port"]) for p in ports):
                self.require(any(tp in (cp.get("containerPort"), cp.get("name")) for cp in cports), where,
                             f"targetPort {tp} is no container port of {targets[0]['metadata']['name']}")
        for pdb in of_kind(docs, "PodDisruptionBudget"):
            self.require(any(selects(pdb["spec"].get("selector", {}).get("matchLabels") or {}, w) for w in workloads),
                         f"k8s:{label}:PodDisruptionBudget/{pdb['metadata']['name']}", "selector matches nothing")
        ingresses = of_kind(docs, "Ingress")
        self.require(ingresses, f"k8s:{label}", "no Ingress")
        for ing in ingresses:
            where = f"k8s:{label}:Ingress/{ing['metadata']['name']}"
            ann = ing["metadata"].get("annotations") or {}
            for key in ("proxy-read-timeout", "proxy-send-timeout"):
                self.require(f"nginx.ingress.kubernetes.io/{key}" in ann, where,
                             f"no nginx.ingress.kubernetes.io/{key} (WebSockets would be cut after 60 s)")
            rules = ing["spec"].get("rules") or []
            for path in (p for rule in rules for p in (rule.get("http") or {}).get("paths") or []):
                be = path["backend"]["service"]
                port = be["port"].get("name", be["port"].get("number"))
                if self.require(port in svc_ports.get(be["name"], ()), where,
                                f"{path.get('path')}: Service {be['name']} with port {port} does not exist"):
                    if be["name"] != ROUTER:
                        self.warn(where, f"routes {path.get('path')} to {be['name']}, not {ROUTER}")
        self.require(not ingresses or ROUTER not in effective or effective[ROUTER].get("TRUST_PROXY") == "true",
                     f"k8s:{label}:{ROUTER}", "behind the Ingress but TRUST_PROXY is not \"true\": every client "
                     "would share the ingress pod's address for rate limits")
        hosts = sorted({r.get("host") for i in ingresses for r in i["spec"].get("rules") or []}, key=str)
        for host in hosts:
            if (route := ingress_route(ingresses, host, SOCKET_IO_PATH)) is not None:
                ing = route[0]
                self.require((ing["metadata"].get("annotations") or {}).get("nginx.ingress.kubernetes.io/affinity")
                             == "cookie", f"k8s:{label}:Ingress/{ing['metadata']['name']}",
                             f"serves {SOCKET_IO_PATH} without cookie affinity (sticky sessions for Socket.IO polling)")
        self.k8s_files(label, docs, containers, effective, ingresses, hosts)

        self.pod_security(label, docs)
        self.k8s_urls(label, docs)
        for cm in of_kind(docs, "ConfigMap"):
            explicit[f"ConfigMap/{cm['metadata']['name']}"] = cm.get("data") or {}
        self.env_coverage(f"k8s:{label}", effective, explicit)
        self.ok(f"k8s:{label}", f"kubectl kustomize: {len(docs)} resources; Deployments for "
                f"{', '.join(sorted(deployments))}")

    def upload_routes(self) -> tuple[list[str], int, int]:
        """(ms-router's upload paths with sample ids, its multipart slack, MAX_FILE_BYTES's default), from the code."""
        src = self.packages.get(ROUTER, (self.root / ROUTER, set()))[0] / "src" / "files.rs"
        text = src.read_text(encoding="utf-8") if src.is_file() else ""
        paths = [re.sub(r"\{[^}]+\}", "x", m) for m in UPLOAD_ROUTE_RE.findall(text)]
        m = re.search(r"MULTIPART_SLACK:\s*u64\s*=\s*([\d_]+)\s*\*\s*([\d_]+)\s*;", text)
        slack = int(m.group(1).replace("_", "")) * int(m.group(2).replace("_", "")) if m else 64 * 1024
        common = self.packages.get("ms-common", (self.root / "ms-common", set()))[0] / "src" / "files.rs"
        m = re.search(r'env_parse\("MAX_FILE_BYTES",\s*([\d_]+)', common.read_text() if common.is_file() else "")
        return paths, slack, int(m.group(1).replace("_", "")) if m else 52_428_800

    def k8s_files(self, label: str, docs: list[dict], containers: dict[str, dict], effective: dict[str, dict],
                  ingresses: list[dict], hosts: list) -> None:
        """Delivered files in one kustomization: ms-router's object store, the shared link key, least privilege,
        the Ingress in front of the uploads."""
        def secret_value(name: str, key: str) -> str | None:
            return secret_values(s).get(key) if (s := find(docs, "Secret", name)) else None

        def source(c: dict, var: str):
            """Where a container's variable comes from: ("secret", name, key, optional), ("value", v),
            ("configMap", name, key) or None."""
            found = None
            for src in c.get("envFrom") or []:
                if (ref := src.get("secretRef")) and var in (self.secret_keys(docs, ref["name"]) or ()):
                    found = ("secret", ref["name"], var, bool(ref.get("optional")))
                elif (ref := src.get("configMapRef")) and var in ((find(docs, "ConfigMap", ref["name"]) or {})
                                                                  .get("data") or {}):
                    found = ("configMap", ref["name"], var)
            for e in c.get("env") or []:
                if e["name"] == var:
                    vf = e.get("valueFrom") or {}
                    if ref := vf.get("secretKeyRef"):
                        found = ("secret", ref["name"], ref["key"], bool(ref.get("optional")))
                    elif ref := vf.get("configMapKeyRef"):
                        found = ("configMap", ref["name"], ref["key"])
                    else:
                        found = ("value", str(e.get("value", "")))
            return found

        def value(c: dict, var: str) -> str | None:
            s = source(c, var)
            if s is None:
                return None
            if s[0] == "secret":
                return secret_value(s[1], s[2])
            if s[0] == "configMap":
                return str(((find(docs, "ConfigMap", s[1]) or {}).get("data") or {}).get(s[2]))
            return s[1]

        if ROUTER not in containers:
            return
        rc, where = containers[ROUTER], f"k8s:{label}:{ROUTER}"
        # (a) ms-router's object store: OBJECT_STORE_URL, and its credentials from a Secret.
        url = value(rc, "OBJECT_STORE_URL")
        if self.require(source(rc, "OBJECT_STORE_URL"), where, "no OBJECT_STORE_URL: uploads would go to the "
                        "pod's emptyDir (lost on restart, different in every replica); want s3://bucket"):
            self.require(url is None or s3_bucket(url), where, f"OBJECT_STORE_URL={url!r} is not s3://bucket[/prefix]")
        for var in ("OBJECT_STORE_URL", *S3_CREDENTIALS):
            s = source(rc, var)
            if s is None or (var == "OBJECT_STORE_URL" and s[0] == "value"):
                self.require(s or var == "OBJECT_STORE_URL", where, f"no {var}: the S3 store would have no credentials")
                continue
            if self.require(s[0] == "secret", where, f"{var} is not taken from a Secret ({s[0]})"):
                self.require(not s[3], where, f"{var} comes from an optional Secret key: a missing key would start "
                             "the router without its object store")
        endpoint = value(rc, "AWS_ENDPOINT") or ""
        if endpoint.startswith("http://"):
            self.require((value(rc, "AWS_ALLOW_HTTP") or "").lower() == "true", where, f"AWS_ENDPOINT={endpoint} is "
                         "plain HTTP but AWS_ALLOW_HTTP is not true: the S3 client refuses it")
        services = {s["metadata"]["name"] for s in of_kind(docs, "Service")}
        host = next(iter(url_hosts(endpoint)), "").split(".")[0]
        if host in services:  # the store runs in this kustomization (dev MinIO): its account and its bucket
            for w in of_kind(docs, "Deployment", "StatefulSet", "Job"):
                for c in w["spec"]["template"]["spec"]["containers"]:
                    for mine, theirs in zip(S3_CREDENTIALS, ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")):
                        have, want = value(c, theirs), value(rc, mine)
                        self.require(have is None or want is None or have == want,
                                     f"k8s:{label}:{w['kind']}/{w['metadata']['name']}",
                                     f"{theirs} differs from {ROUTER}'s {mine}: MinIO's root account is the router's "
                                     "S3 account here, and every upload would be refused")
            made = {b for j in of_kind(docs, "Job") for c in j["spec"]["template"]["spec"]["containers"]
                    for b in MB_RE.findall(" ".join(as_argv(c.get("command")) + as_argv(c.get("args"))))}
            bucket = s3_bucket(url)
            self.require(not bucket or bucket in made, where, f"the S3 endpoint is Service {host} of this "
                         f"kustomization, but no Job creates bucket {bucket} with mc mb "
                         f"(found: {', '.join(sorted(made)) or 'none'})")
        # (b) one DOWNLOAD_LINK_KEY source for the signer (ms-stuff) and the checker (ms-router).
        srcs = {b: source(containers[b], LINK_KEY) for b in LINK_KEY_SERVICES if b in containers}
        for b, s in sorted(srcs.items()):
            bw = f"k8s:{label}:{b}"
            if not self.require(s, bw, f"no {LINK_KEY}: pods share no disk, so each would make up its own key and "
                                "download links would be refused"):
                continue
            if self.require(s[0] == "secret", bw, f"{LINK_KEY} is not taken from a Secret ({s[0]})"):
                self.require(not s[3], bw, f"{LINK_KEY} comes from an optional Secret key: without it each pod would "
                             "make up its own key (refused links) instead of failing to start")
                v = secret_value(s[1], s[2])
                size = link_key_bytes(v) if v is not None else LINK_KEY_MIN_BYTES
                self.require(size and size >= LINK_KEY_MIN_BYTES, bw, f"{LINK_KEY} in Secret {s[1]} is not hex or "
                             f"base64 of at least {LINK_KEY_MIN_BYTES} bytes: the service would refuse to start")
                if v is not None and label != "deploy/k8s":
                    self.dev_link_keys.add(v.strip())
        if len(srcs) == 2 and all(srcs.values()) and len({s[:3] for s in srcs.values()}) > 1:
            self.error(f"k8s:{label}", f"{LINK_KEY}: " + ", ".join(f"{b} from {s[0]} {'/'.join(s[1:3])}" for b, s in
                       sorted(srcs.items())) + ": links signed by ms-stuff would be refused by ms-router (one Secret key)")
        # (c) least privilege: the S3 settings to ms-router only, the link key to ms-router and ms-stuff only.
        s3_refs = {s[1:3] for v in ("OBJECT_STORE_URL", *S3_CREDENTIALS) if (s := source(rc, v)) and s[0] == "secret"}
        for b, c in sorted(containers.items()):
            bw = f"k8s:{label}:{b}"
            if b != ROUTER:
                for var in sorted(v for v in effective.get(b, {}) if is_object_store_var(v)):
                    self.error(bw, f"gets {var}: only {ROUTER} may hold the object store's settings and credentials")
                refs = {(r["name"], r["key"]) for e in c.get("env") or []
                        if (r := (e.get("valueFrom") or {}).get("secretKeyRef"))}
                refs |= {(f["secretRef"]["name"], k) for f in c.get("envFrom") or [] if f.get("secretRef")
                         for k in self.secret_keys(docs, f["secretRef"]["name"]) or ()}
                for name, key in sorted(refs & s3_refs):
                    self.error(bw, f"reads {key} of Secret {name}: only {ROUTER} may hold the object store's settings "
                               "and credentials")
            if b not in LINK_KEY_SERVICES and LINK_KEY in effective.get(b, {}):
                self.error(bw, f"gets {LINK_KEY}: only {' and '.join(LINK_KEY_SERVICES)} may hold it")
        # The Ingress location that serves the upload routes takes a whole file.
        paths, slack, default_max = self.upload_routes()
        if not paths:
            self.warn(f"k8s:{label}", f"no upload routes found in {ROUTER}/src/files.rs; Ingress body size unchecked")
        max_bytes = effective.get(ROUTER, {}).get("MAX_FILE_BYTES", str(default_max))
        for host in hosts:
            for path in paths:
                if (route := ingress_route(ingresses, host, path)) is None:
                    continue
                ing, entry = route
                body = (ing["metadata"].get("annotations") or {}).get("nginx.ingress.kubernetes.io/proxy-body-size",
                                                                        NGINX_DEFAULT_BODY)
                size = nginx_size(str(body))
                need = int(max_bytes) + slack if max_bytes.isdigit() else None
                self.require(size is not None and (size == -1 or need is None or size >= need),
                             f"k8s:{label}:Ingress/{ing['metadata']['name']}",
                             f"serves {path} ({entry.get('path')}) with proxy-body-size {body}, below MAX_FILE_BYTES "
                             f"{max_bytes} + {slack} bytes of multipart framing: nginx would answer 413 to uploads "
                             f"{ROUTER} accepts")
                if (ing["metadata"].get("annotations") or {}).get(
                        "nginx.ingress.kubernetes.io/proxy-request-buffering") != "off":
                    self.warn(f"k8s:{label}:Ingress/{ing['metadata']['name']}", f"serves {path} with request "
                              "buffering on: nginx spools every upload to its own disk before ms-router sees it")
        self.ok(f"k8s:{label}", f"files: {ROUTER} -> {url or '(OBJECT_STORE_URL from a template Secret)'}; "
                f"{LINK_KEY} from {', '.join(sorted({'/'.join(s[1:3]) for s in srcs.values() if s}))}; "
                f"uploads {', '.join(paths)} through Ingress body limits >= MAX_FILE_BYTES")

    def pod_security(self, label: str, docs: list[dict]) -> None:
        """Pods in a namespace that enforces the "restricted" Pod Security level need these (else rejected)."""
        level = "pod-security.kubernetes.io/enforce"
        restricted = {n["metadata"]["name"] for n in of_kind(docs, "Namespace")
                      if (n["metadata"].get("labels") or {}).get(level) == "restricted"}
        for w in of_kind(docs, "Deployment", "StatefulSet", "DaemonSet", "Job"):
            if w["metadata"].get("namespace") not in restricted:
                continue
            pod = w["spec"]["template"]["spec"]
            psc = pod.get("securityContext") or {}
            for c in (pod.get("initContainers") or []) + pod["containers"]:
                csc = c.get("securityContext") or {}
                seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
                lacks = [what for what, ok in (
                    ("runAsNonRoot: true", csc.get("runAsNonRoot", psc.get("runAsNonRoot"))),
                    ("allowPrivilegeEscalation: false", csc.get("allowPrivilegeEscalation") is False),
                    ("capabilities.drop: [ALL]", "ALL" in ((csc.get("capabilities") or {}).get("drop") or [])),
                    ("seccompProfile RuntimeDefault", seccomp in ("RuntimeDefault", "Localhost"))) if not ok]
                self.require(not lacks, f"k8s:{label}:{w['kind']}/{w['metadata']['name']}",
                             f"container {c['name']} lacks {', '.join(lacks)}, which the restricted Pod Security "
                             f"level of namespace {w['metadata']['namespace']} requires (pods would be rejected)")

    def k8s_urls(self, label: str, docs: list[dict]) -> None:
        """URLs in rendered Secrets and ConfigMaps name Services (or StatefulSet pods) of the same tree."""
        services = {s["metadata"]["name"] for s in of_kind(docs, "Service")}
        pods = {f"{s['metadata']['name']}-{i}.{s['spec'].get('serviceName')}"
                for s in of_kind(docs, "StatefulSet") for i in range(s["spec"].get("replicas", 1))}
        replica_sets = self.replica_sets([(f"k8s:{label}:{w['kind']}/{w['metadata']['name']}",
                                           as_argv(c.get("command")) + as_argv(c.get("args")), c)
                                          for w in of_kind(docs, "Deployment", "StatefulSet")
                                          for c in w["spec"]["template"]["spec"]["containers"]])
        for obj in of_kind(docs, "Secret", "ConfigMap"):
            where, ns = f"k8s:{label}:{obj['kind']}/{obj['metadata']['name']}", obj["metadata"].get("namespace")
            values = secret_values(obj) if obj["kind"] == "Secret" else \
                {k: str(v) for k, v in (obj.get("data") or {}).items()}
            for var in ("AMQP_URL", "MONGODB_URL", "AWS_ENDPOINT"):
                for host in url_hosts(values.get(var, "")):
                    if var == "AWS_ENDPOINT" and "." in host and ".svc" not in host:
                        continue  # an S3 service outside the cluster
                    p = host.split(".")  # service[.namespace[.svc...]] or statefulset-N.service[.namespace...]
                    self.require((p[0] in services and p[1:2] in ([], [ns])) or
                                 (".".join(p[:2]) in pods and p[2:3] in ([], [ns])), where,
                                 f"{var} points at host {host!r}, which is no Service (or StatefulSet pod) here")
            self.mongo_url(where, values.get("MONGODB_URL"), replica_sets)

    # ----------------------------------------------------------------------------------------------
    def skaffold(self) -> None:
        sk = load_yaml(self.root / "skaffold.yaml")
        if not self.require(str(sk.get("apiVersion")).startswith("skaffold/v4") and sk.get("kind") == "Config",
                            "skaffold", "skaffold.yaml is missing or not a skaffold/v4* Config"):
            return
        artifacts = (sk.get("build") or {}).get("artifacts") or []
        self.require(IMAGE_REPO in {a.get("image") for a in artifacts}, "skaffold",
                     f"no build artifact named {IMAGE_REPO} (the Deployments' image)")
        for a in artifacts:
            self.require((self.root / a.get("context", ".") / (a.get("docker") or {}).get("dockerfile", "Dockerfile"))
                         .is_file(), "skaffold", f"artifact {a.get('image')}: its Dockerfile does not exist")
        paths = {}  # kustomize path -> profile
        for prof in [{"name": "(default)", **sk}] + (sk.get("profiles") or []):
            for p in ((prof.get("manifests") or {}).get("kustomize") or {}).get("paths") or []:
                paths.setdefault(p, prof["name"])
                self.require((self.root / p / "kustomization.yaml").is_file(), "skaffold",
                             f"profile {prof['name']}: kustomize path {p} has no kustomization.yaml")
        self.require(default := next(iter(paths), None), "skaffold", "manifests.kustomize.paths is empty")
        for pf in sk.get("portForward") or []:
            if default in self.trees and str(pf.get("resourceType")).lower() == "service":
                svc = find(self.trees[default], "Service", pf.get("resourceName"))
                self.require(svc and any(p["port"] == pf.get("port") for p in svc["spec"]["ports"]), "skaffold",
                             f"portForward: {default} has no Service {pf.get('resourceName')} port {pf.get('port')}")
        images = ", ".join(str(a.get("image")) for a in artifacts)
        self.ok("skaffold", f"artifacts {images}; kustomize {', '.join(paths)}")

    def workflow(self) -> None:
        wf = load_yaml(self.root / ".github" / "workflows" / "ci.yml")
        wenv, jobs = wf.get("env") or {}, wf.get("jobs") or {}
        for var in ("RUST_VERSION", "NODE_VERSION"):
            self.require(var not in self.args or str(wenv.get(var)) == self.args[var], "workflow",
                         f"{var} {wenv.get(var)} but the Dockerfile uses {self.args.get(var)}")
        runs_ci = {n: j for n, j in jobs.items() if any(".ci/run" in str(s.get("run")) for s in j.get("steps") or [])}
        self.require(runs_ci, "workflow", "no job of .github/workflows/ci.yml runs .ci/run")
        for n, j in runs_ci.items():
            url = str({**wenv, **(j.get("env") or {})}.get("MONGODB_URL"))
            steps = " ".join(str(s.get("run", "")) for s in j.get("steps") or [])
            self.require("replicaSet=" in url and "--replSet" in steps and "rs.initiate" in steps, "workflow",
                         f"job {n} runs .ci/run without a MongoDB replica set (--replSet, rs.initiate, MONGODB_URL "
                         "with replicaSet=): the MongoDB suites would skip")
            self.require(any("rabbitmq" in str((s or {}).get("image")) for s in (j.get("services") or {}).values()),
                         "workflow", f"job {n} has no RabbitMQ service container")
        tags = {t for j in jobs.values() for s in j.get("steps") or [] if "build-push-action" in str(s.get("uses"))
                for t in re.split(r"[\s,]+", str((s.get("with") or {}).get("tags", ""))) if t}
        for image in sorted(self.compose_images - tags):
            self.error("workflow", f"no build-push-action step tags the image {image}, which docker-compose.yml runs")
        self.ok("workflow", f"jobs {', '.join(jobs)}; .ci/run with MongoDB and RabbitMQ; builds {', '.join(tags)}")

    def embedded_commands(self) -> None:
        def syntax(shell: str, body: str) -> str:
            r = subprocess.run([shell, "-n"], input=body, capture_output=True, text=True)
            return r.stderr.strip() if r.returncode else ""

        runs = [(stage, re.sub(r"^(--\S+\s+)+", "", a)) for stage, a in self.run_lines if not a.startswith("[")]
        for stage, body in runs:
            if err := syntax("sh", body):
                self.error("Dockerfile", f"RUN in stage {stage} is not valid sh: {err}")
        jobs = load_yaml(self.root / ".github" / "workflows" / "ci.yml").get("jobs") or {}
        steps = [(n, s) for n, j in jobs.items() for s in j.get("steps") or [] if s.get("run")]
        for job, step in steps:
            if err := syntax("bash", re.sub(r"\$\{\{[^}]*\}\}", "X", str(step["run"]))):
                self.error("workflow", f"job {job}, step {step.get('name', '?')!r}: bash -n: {err}")
        compose, _ = load_compose(self.root)
        scripts = [(f"compose:{n}", sh_script(as_argv(s.get("entrypoint")) + as_argv(s.get("command"))))
                   for n, s in (compose.get("services") or {}).items()]
        scripts += [(f"k8s:{label}:{w['kind']}/{w['metadata']['name']}",
                     sh_script(as_argv(c.get("command")) + as_argv(c.get("args"))))
                    for label, docs in self.trees.items() for w in of_kind(docs, "Deployment", "StatefulSet", "Job")
                    for c in w["spec"]["template"]["spec"].get("initContainers", []) + w["spec"]["template"]["spec"]
                    ["containers"]]
        scripts = [(where, body) for where, body in scripts if body]
        for where, body in scripts:
            if err := syntax("sh", body):
                self.error(where, f"its sh -c command is not valid sh: {err}")
        snippets = mongosh_snippets([load_yaml(self.root / "docker-compose.yml"), list(self.trees.values())], [])
        if snippets and shutil.which("node"):
            prog = ("const s = JSON.parse(require('fs').readFileSync(0, 'utf8')); let bad = 0;"
                    "s.forEach((js, i) => { try { new Function(js) } catch (e) {"
                    " bad++; console.log(`snippet ${i + 1}: ${e.message}: ${js}`) } }); process.exit(bad ? 1 : 0)")
            r = subprocess.run(["node", "-e", prog], input=json.dumps(snippets), capture_output=True, text=True)
            for line in (r.stdout + r.stderr).strip().splitlines() if r.returncode else []:
                self.error("mongosh", f"JavaScript does not parse: {line}")
        elif snippets:
            self.warn("mongosh", "node not found: the mongosh --eval snippets were not parsed")
        self.ok("commands", f"{len(runs)} Dockerfile RUN lines (sh -n); {len(steps)} workflow run blocks (bash -n); "
                f"{len(scripts)} sh -c commands of compose and Kubernetes (sh -n); "
                f"{len(snippets)} mongosh --eval snippets (node)")


# --------------------------------------------------------------------------------------------------
def compose_env(root: Path, service: str, local: bool, overrides: list[str]) -> int:
    """Prints the environment a compose service runs with: the image's ENV, then the service's
    environment (interpolated with .env.example and the defaults). --local turns it into the same
    settings for a binary started here: hosts of compose services become 127.0.0.1, MONGODB_URL is
    dropped (SQLite under DATA_DIR), so are OBJECT_STORE_URL and the AWS_* variables (files in a directory
    under DATA_DIR), and image paths under /app/ point into the repository."""
    data, _ = load_compose(root)
    if (svc := (data.get("services") or {}).get(service)) is None:
        print(f"no compose service {service}", file=sys.stderr)
        return 2
    env: dict[str, str] = {}
    if (root / "Dockerfile").is_file():
        _, stages = parse_dockerfile(root / "Dockerfile")
        env.update(stage_env(stages, stages[-1]))
    env.update(service_env(svc))
    if local:
        env.pop("MONGODB_URL", None)
        # No per-service AMQP users on the local broker: guest, as the run command's default.
        env.pop("AMQP_PASSWORD_FILE", None)
        if "AMQP_URL" in env:
            env["AMQP_URL"] = "amqp://guest:guest@127.0.0.1:5672/%2f"
        for k in [k for k in env if is_object_store_var(k)]:
            env.pop(k)  # no MinIO here: files in the default directory under DATA_DIR
        hosts = set(data["services"]) | {s["hostname"] for s in data["services"].values() if s.get("hostname")}
        for k, v in env.items():
            for h in hosts:
                v = re.sub(rf"(@|//){re.escape(h)}([:/])", r"\g<1>127.0.0.1\g<2>", v)
            env[k] = str(root / v[len("/app/"):]) if v.startswith("/app/") else v
    env.update(o.partition("=")[::2] for o in overrides)
    for k, v in env.items():
        print(f"{k}={v}")
    return 0


# --------------------------------------------------------------------------------------------------
def add_crate(d: Path) -> None:
    (d / "ms-extra" / "src").mkdir(parents=True)
    (d / "ms-extra" / "Cargo.toml").write_text('[package]\nname = "ms-extra"\n')
    (d / "ms-extra" / "src" / "main.rs").write_text("fn main() {}\n")
    (d / "Cargo.toml").write_text((d / "Cargo.toml").read_text().replace("members = [", 'members = ["ms-extra", ', 1))


SELF_TEST_FILES = ["Dockerfile", ".dockerignore", "docker-compose.yml", ".env.example", "skaffold.yaml", "README.md",
                   "Cargo.toml", "Cargo.lock", "deploy", ".github", "web-client/package.json",
                   "web-client/package-lock.json", "web-client/.npmrc"]
COMPOSE, CI = "docker-compose.yml", ".github/workflows/ci.yml"
BASE, DEV = "deploy/k8s/base", "deploy/k8s/dev/kustomization.yaml"
# (what breaks, the file (or a function that breaks the copy), text, its replacement, a substring of the error)
SELF_TEST_CASES = [
    ("a new service crate", add_crate, "", "", "service binary ms-extra is not built"),
    ("a compose service missing", COMPOSE, 'command: ["ms-order"]', 'command: ["seed"]\n    profiles: ["x"]',
     "service binary ms-order is not run by any compose service"),
    ("an unknown binary", COMPOSE, '["ms-stuff"]', '["ms-stuf"]', "does not name a binary the Dockerfile"),
    ("HEALTH_PORT vs health check", COMPOSE, 'HEALTH_PORT: "8080"', 'HEALTH_PORT: "8081"',
     "health check uses port 8080 and path /readyz, but the service answers /healthz and /readyz on 8081"),
    ("a depends_on without health", COMPOSE, "condition: service_healthy", "condition: service_started",
     "without condition: service_healthy"),
    ("another replica set name", COMPOSE, "?replicaSet=rs0", "?replicaSet=rs1", "names replicaSet=rs1"),
    ("a mongosh snippet that does not parse", COMPOSE, "quit(1) }", "quit(1) }}", "JavaScript does not parse"),
    ("a README variable nobody sets", "README.md", "| `LOG_FORMAT` |", "| `NEW_KNOB` | `1` | new |\n| `LOG_FORMAT` |",
     "NEW_KNOB"),
    ("an unused .env.example key", ".env.example", "ORDER_HOLD_SECONDS=900", "ORDER_HOLD_SECONDS=900\nUNUSED_KEY=1",
     "UNUSED_KEY is not used by docker-compose.yml"),
    ("EXPOSE without the router port", "Dockerfile", "EXPOSE 3000 8080", "EXPOSE 8080", "PORT=3000 is not EXPOSEd"),
    ("a runtime image without curl", "Dockerfile", "ca-certificates curl;", "ca-certificates;", "runs curl"),
    (".dockerignore dropping sources", ".dockerignore", "data\n", "data\nms-*\n",
     "ms-user/Cargo.toml is excluded, but the image build needs it"),
    ("a Rust version drift", CI, 'RUST_VERSION: "1.95"', 'RUST_VERSION: "1.94"', "RUST_VERSION 1.94"),
    ("a broken workflow shell step", CI, "sleep 2\n          done\n", "sleep 2\n", "bash -n"),
    ("a k8s health port", f"{BASE}/ms-user.yaml", 'value: "8080"', 'value: "9090"', "HEALTH_PORT=9090 is not EXPOSE"),
    ("a k8s probe path", f"{BASE}/ms-stuff.yaml", "path: /readyz", "path: /ready", "readinessProbe asks /ready"),
    ("a typo in a ConfigMap variable", f"{BASE}/configmap.yaml", "PREFETCH:", "PREFECTH:", "sets PREFECTH"),
    ("a Deployment with one replica", f"{BASE}/ms-router.yaml", "replicas: 2", "replicas: 1", "replicas is 1"),
    ("a Secret key that does not exist", f"{BASE}/ms-payment.yaml", "key: STRIPE_SECRET_KEY", "key: STRIPE_KEY",
     "has no key STRIPE_KEY"),
    ("a Service targeting a missing port", f"{BASE}/ms-order.yaml", "targetPort: health", "targetPort: metrics",
     "targetPort metrics is no container port"),
    ("a resource kubectl cannot find", f"{BASE}/kustomization.yaml", "- ingress.yaml", "- ingres.yaml",
     "kubectl kustomize failed"),
    # Only the dev overlay's patches and generator show these: the checks read what kubectl renders.
    ("a typo in a dev patch's variable", DEV, "name: COOKIE_SECURE", "name: COOKIE_SECUR",
     "[k8s:deploy/k8s/dev:ms-router] sets COOKIE_SECUR"),
    ("the dev overlay without its Pod Security patch", DEV, "value: baseline", "value: restricted",
     "StatefulSet/mongo] container mongo lacks runAsNonRoot"),
    # (The AMQP URLs live in the generated, uncommitted Secret stuffmart-amqp: deploy/rabbitmq/k8s-secrets.sh.)
    ("a dev Secret URL naming no Service", DEV, "//mongo-0.mongo:27017", "//mongo-1.mongo:27017",
     "MONGODB_URL points at host 'mongo-1.mongo'"),
    ("compose: an AMQP_URL naming no compose service", COMPOSE, "AMQP_URL: amqp://ms-user@rabbitmq", "AMQP_URL: amqp://ms-user@rabit",
     "AMQP_URL points at host 'rabit'"),
    ("a dev Secret URL with another replica set", DEV, "?replicaSet=rs0", "?replicaSet=rs", "names replicaSet=rs,"),
    # Delivered files: ms-router's object store, the shared link key, least privilege, the upload Ingress.
    ("compose: ms-router without OBJECT_STORE_URL", COMPOSE, "      OBJECT_STORE_URL: s3://stuffmart-files\n", "",
     "[compose:ms-router] no OBJECT_STORE_URL"),
    ("compose: an S3 secret written into the file", COMPOSE, "AWS_SECRET_ACCESS_KEY: *minio-password",
     "AWS_SECRET_ACCESS_KEY: stuffmart-dev-only-password", "AWS_SECRET_ACCESS_KEY is written into docker-compose.yml"),
    ("compose: MinIO with another account than ms-router's", COMPOSE, "MINIO_ROOT_PASSWORD: *minio-password",
     "MINIO_ROOT_PASSWORD: another-password", "differs from minio's MINIO_ROOT_PASSWORD"),
    ("compose: the bucket job creating another bucket", COMPOSE, "stuffmart/stuffmart-files",
     "stuffmart/stuffmart-uploads", "creates bucket stuffmart-files"),
    ("compose: ms-router not waiting for the bucket job", COMPOSE,
     "minio-buckets:\n        condition: service_completed_successfully",
     "minio-buckets:\n        condition: service_started", "depends_on minio-buckets without condition"),
    ("compose: a bucket job script that does not parse", COMPOSE, "mc mb --ignore-existing", "mc mb --ignore-existing '",
     "[compose:minio-buckets] its sh -c command is not valid sh"),
    ("compose: ms-stuff with another link key", COMPOSE, "DOWNLOAD_LINK_KEY: *download-link-key",
     "DOWNLOAD_LINK_KEY: ${STUFF_LINK_KEY:-" + "ab" * 32 + "}", "DOWNLOAD_LINK_KEY differs between ms-router"),
    ("compose: a link key shorter than 32 bytes", COMPOSE, "${DOWNLOAD_LINK_KEY:-7374", "${DOWNLOAD_LINK_KEY:-74",
     "is not hex or base64 of at least 32 bytes"),
    ("compose: S3 credentials for another service", COMPOSE, "ORDER_HOLD_SECONDS: ${ORDER_HOLD_SECONDS:-900}",
     "ORDER_HOLD_SECONDS: ${ORDER_HOLD_SECONDS:-900}\n      AWS_SECRET_ACCESS_KEY: *minio-password",
     "[compose:ms-order] gets AWS_SECRET_ACCESS_KEY"),
    ("compose: the link key for another service", COMPOSE, "STRIPE_SECRET_KEY: ${STRIPE_SECRET_KEY:-}",
     "STRIPE_SECRET_KEY: ${STRIPE_SECRET_KEY:-}\n      DOWNLOAD_LINK_KEY: *download-link-key",
     "[compose:ms-payment] gets DOWNLOAD_LINK_KEY"),
    ("k8s: ms-router without OBJECT_STORE_URL", f"{BASE}/ms-router.yaml", "- name: OBJECT_STORE_URL\n",
     "- name: OBJECT_STORE_URI\n", "[k8s:deploy/k8s:ms-router] no OBJECT_STORE_URL"),
    ("k8s: ms-router's S3 secret as a literal", f"{BASE}/ms-router.yaml",
     "- name: AWS_SECRET_ACCESS_KEY\n              valueFrom:\n                secretKeyRef:\n"
     "                  name: stuffmart-object-store\n                  key: AWS_SECRET_ACCESS_KEY\n",
     '- name: AWS_SECRET_ACCESS_KEY\n              value: "x"\n', "AWS_SECRET_ACCESS_KEY is not taken from a Secret"),
    ("k8s: ms-stuff's link key from another Secret", f"{BASE}/ms-stuff.yaml",
     "name: stuffmart-secrets\n                  key: DOWNLOAD_LINK_KEY",
     "name: stuffmart-object-store\n                  key: DOWNLOAD_LINK_KEY",
     "links signed by ms-stuff would be refused by ms-router"),
    ("k8s: an optional link key", f"{BASE}/ms-stuff.yaml", "key: DOWNLOAD_LINK_KEY\n",
     "key: DOWNLOAD_LINK_KEY\n                  optional: true\n", "DOWNLOAD_LINK_KEY comes from an optional Secret key"),
    ("k8s: S3 credentials for another Deployment", f"{BASE}/ms-order.yaml", '              value: "8080"\n',
     '              value: "8080"\n            - name: S3_SECRET\n              valueFrom:\n                secretKeyRef:\n'
     '                  name: stuffmart-object-store\n                  key: AWS_SECRET_ACCESS_KEY\n',
     "[k8s:deploy/k8s:ms-order] reads AWS_SECRET_ACCESS_KEY of Secret stuffmart-object-store"),
    ("k8s: S3 settings in the shared ConfigMap", f"{BASE}/configmap.yaml", 'PREFETCH: "64"',
     'PREFETCH: "64"\n  AWS_REGION: eu-west-1', "[k8s:deploy/k8s:ms-stuff] gets AWS_REGION"),
    ("k8s: the link key for another Deployment", f"{BASE}/ms-payment.yaml", '              value: "8080"\n',
     '              value: "8080"\n            - name: DOWNLOAD_LINK_KEY\n              valueFrom:\n'
     '                secretKeyRef:\n                  name: stuffmart-secrets\n                  key: DOWNLOAD_LINK_KEY\n',
     "[k8s:deploy/k8s:ms-payment] gets DOWNLOAD_LINK_KEY"),
    ("k8s: the upload Ingress below MAX_FILE_BYTES", f"{BASE}/ingress.yaml", 'proxy-body-size: "60m"',
     'proxy-body-size: "50m"', "Ingress/stuffmart-uploads] serves /api/stuff/x/files (/api/stuff) with proxy-body-size"),
    ("k8s: uploads left on the 1m Ingress", f"{BASE}/ingress.yaml", "path: /api/stuff\n", "path: /api/stuffs\n",
     "Ingress/stuffmart] serves /api/stuff/x/files (/) with proxy-body-size 1m"),
    ("k8s: Socket.IO on an Ingress without affinity", f"{BASE}/ingress.yaml", "path: /api/stuff\n",
     "path: /socket.io\n", "serves /socket.io/ without cookie affinity"),
    ("the public dev link key in the production template", "deploy/k8s/secret.example.yaml",
     '"REPLACE_WITH_OPENSSL_RAND_HEX_32"', '"73747566666d6172742d6465762d6f6e6c792d6c696e6b2d6b65792d30303030"',
     "DOWNLOAD_LINK_KEY is the public dev key"),
    ("a dev S3 endpoint naming no Service", DEV, "AWS_ENDPOINT=http://minio:9000", "AWS_ENDPOINT=http://mini:9000",
     "AWS_ENDPOINT points at host 'mini'"),
    ("a dev plain-HTTP endpoint without AWS_ALLOW_HTTP", DEV, "      - AWS_ALLOW_HTTP=true\n", "",
     "AWS_ALLOW_HTTP is not true"),
    ("a dev link key shorter than 32 bytes", DEV, "DOWNLOAD_LINK_KEY=7374", "DOWNLOAD_LINK_KEY=74",
     "[k8s:deploy/k8s/dev:ms-router] DOWNLOAD_LINK_KEY in Secret stuffmart-secrets is not hex or base64"),
    ("a dev bucket Job creating another bucket", "deploy/k8s/dev/minio.yaml", "stuffmart/stuffmart-files",
     "stuffmart/stuffmart-uploads", "no Job creates bucket stuffmart-files"),
    ("a dev MinIO with another account than ms-router's", "deploy/k8s/dev/minio.yaml",
     "key: AWS_SECRET_ACCESS_KEY", "key: AWS_ACCESS_KEY_ID", "StatefulSet/minio] MINIO_ROOT_PASSWORD differs"),
]


def self_test(root: Path) -> int:
    failures = skipped = 0
    with tempfile.TemporaryDirectory(prefix="check-deploy-") as tmp:
        pristine = Path(tmp) / "pristine"
        members = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]["members"]
        for f in SELF_TEST_FILES + [str(p.relative_to(root)) for m in members for p in root.glob(m)]:
            (pristine / f).parent.mkdir(parents=True, exist_ok=True)
            if (root / f).is_dir():
                shutil.copytree(root / f, pristine / f, ignore=shutil.ignore_patterns("target", "tests"))
            elif (root / f).is_file():
                shutil.copy2(root / f, pristine / f)
        if (base := Checks(pristine).run()).errors:
            print("  self-test: the unmodified copy already fails:")
            base.print(quiet=True)
            return 1
        print("  self-test: unmodified copy passes")
        for i, (label, path, old, new, expect) in enumerate(SELF_TEST_CASES):
            if str(path).startswith("deploy/") and not shutil.which("kubectl"):
                skipped += 1
                print(f"  self-test SKIPPED (no kubectl): {label}")
                continue
            work = Path(tmp) / f"case{i}"
            shutil.copytree(pristine, work)
            if callable(path):
                path(work)
            elif old in (text := (work / path).read_text(encoding="utf-8")):
                (work / path).write_text(text.replace(old, new, 1), encoding="utf-8")
            else:
                raise AssertionError(f"self-test setup: {old!r} is not in {path}")
            errors = Checks(work).run().errors
            if hit := [e for e in errors if expect in e]:
                print(f"  self-test ok: {label}: {hit[0]}")
            else:
                failures += 1
                print(f"  self-test FAILED: {label}: expected an error containing {expect!r}, got:")
                print("\n".join(f"      {e}" for e in errors or ["(no errors)"]))
            shutil.rmtree(work)
    print(f"  self-test: {len(SELF_TEST_CASES) - failures - skipped} of {len(SELF_TEST_CASES)} deliberate breaks "
          "reported" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2]))
    ap.add_argument("--quiet", action="store_true", help="print only warnings and errors")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--compose-env", metavar="SERVICE")
    ap.add_argument("--local", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="with --compose-env: override one variable (e.g. HEALTH_PORT=18081)")
    args = ap.parse_args()
    root = Path(args.root).resolve()
    if args.compose_env:
        return compose_env(root, args.compose_env, args.local, args.set)
    if args.self_test:
        return self_test(root)
    checks = Checks(root).run()
    checks.print(quiet=args.quiet)
    print(f"  consistency: {len(checks.errors)} error(s), {len(checks.warnings)} warning(s)")
    return 1 if checks.errors else 0


if __name__ == "__main__":
    sys.exit(main())
