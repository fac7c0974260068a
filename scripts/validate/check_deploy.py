#!/usr/bin/env python3
"""Consistency checks for StuffMart's deployment files (no Docker engine, no cluster).

Reads the Dockerfile, .dockerignore, docker-compose.yml, .env.example, deploy/k8s
(kustomizations rendered by a small built-in renderer), skaffold.yaml, the GitHub
workflow, README.md's configuration table and the workspace (cargo metadata, or the
ms-*/ directories), and checks that they agree:

  * every service binary of the workspace runs in compose and has a Kubernetes Deployment,
    and every command names a binary the Dockerfile builds and installs;
  * every variable of README's configuration table that applies to a service is set for it
    (by the image, compose or Kubernetes), or is on the short list of deliberate defaults;
    nothing sets a variable that no code and no README row knows (typos);
  * ports agree: Dockerfile EXPOSE, PORT / HEALTH_PORT, compose health checks and published
    port, Kubernetes containerPorts, probes, Services, Ingress, skaffold port-forward;
  * URLs point at services that exist and are waited for (depends_on: service_healthy);
  * Kubernetes basics: 2+ replicas, probes on /healthz and /readyz, requests and limits,
    non-root with a read-only root filesystem, Secret and ConfigMap references resolve;
  * versions agree (Rust, Node) between the Dockerfile and the workflow.

Schema validation (compose-spec, Kubernetes, GitHub workflow) is done by
scripts/validate-deploy.sh with check-jsonschema and kubernetes-validate.

Usage:
  check_deploy.py [--root DIR] [--no-cargo]       run the checks (exit 1 on any error)
  check_deploy.py --compose-env SERVICE [--local] [--set K=V]
                                                   print the env compose gives SERVICE (image
                                                   ENV + compose); --local: broker on
                                                   127.0.0.1, SQLite, repo paths
  check_deploy.py --self-test                      break copies of the files on purpose
                                                   and make sure each break is reported
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

try:
    import yaml
except ImportError:  # pragma: no cover - validate-deploy.sh installs it
    print("check_deploy.py needs PyYAML (python3 -m pip install pyyaml)", file=sys.stderr)
    sys.exit(2)

IMAGE_REPO = "stuffmart"
ROUTER = "ms-router"
K8S_NAMESPACE = "stuffmart"

# Variables left to their README default on purpose, with the reason.
DELIBERATE_DEFAULTS = {
    "AMQP_PREFIX": "empty: deployments use unprefixed names (the prefix isolates test runs)",
    "BIND_ADDR": "0.0.0.0, what a container needs",
    "STRIPE_API_BASE": "tests point it at a mock; deployments use Stripe's",
    "STRIPE_TIMEOUT_MS": "tuning knob, default is fine",
    "PAYMENT_ORDER_WAIT_MS": "tuning knob, default is fine",
    "MAX_PAYLOAD_BYTES": "tuning knob, default is fine",
    "SIGNIN_MAX_ATTEMPTS": "tuning knob, default is fine",
    "SIGNIN_WINDOW_SECONDS": "tuning knob, default is fine",
    "MAX_CONNECTIONS": "per-replica socket limit; the default (20000) fits the pod limits",
}
# Set by deployment files although README's table does not list them.
KNOWN_EXTRA_VARS = {
    "HEALTH_PORT": "backend health port (/healthz, /readyz) for probes",
    "STATIC_DIR": "where ms-router finds the built web client",
    "RUST_LOG": "log filter (README mentions it with LOG_FORMAT)",
}
# Which services a README variable applies to when its row does not say "(ms-...)".
BACKEND_ONLY = {"MONGODB_URL", "DATA_DIR", "HEALTH_PORT"}
SERVICE_SCOPES = {
    "PORT": {ROUTER},
    "ORDER_HOLD_SECONDS": {"ms-order"},
    "STRIPE_SECRET_KEY": {"ms-payment"},
    "ADMIN_EMAILS": {"ms-user"},
    "ACCESS_TOKEN_SECONDS": {"ms-user"},
    "REFRESH_TOKEN_SECONDS": {"ms-user"},
}
ENV_EXAMPLE_REQUIRED = [
    "STRIPE_SECRET_KEY",
    "ADMIN_EMAILS",
    "ORDER_HOLD_SECONDS",
    "VITE_STRIPE_PUBLISHABLE_KEY",
]


# --------------------------------------------------------------------------------------
class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []

    def error(self, where: str, msg: str) -> None:
        self.errors.append(f"[{where}] {msg}")

    def warn(self, where: str, msg: str) -> None:
        self.warnings.append(f"[{where}] {msg}")

    def ok(self, where: str, msg: str) -> None:
        self.notes.append(f"[{where}] {msg}")

    def print(self, quiet: bool = False) -> None:
        if not quiet:
            for n in self.notes:
                print(f"  ok    {n}")
        for w in self.warnings:
            print(f"  WARN  {w}")
        for e in self.errors:
            print(f"  ERROR {e}")


def load_yaml_docs(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def rel(root: Path, p: Path) -> str:
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)


# --------------------------------------------------------------------------------------
# Workspace and code
class Workspace:
    def __init__(self) -> None:
        self.packages: dict[str, dict] = {}  # name -> {"dir": Path, "bins": set}
        self.source = ""

    @property
    def all_bins(self) -> set[str]:
        return {b for p in self.packages.values() for b in p["bins"]}

    @property
    def services(self) -> list[str]:
        """Binary crates: ms-* packages with a binary of their own name (src/main.rs)."""
        return sorted(
            n for n, p in self.packages.items() if n.startswith("ms-") and n in p["bins"]
        )


def load_workspace(root: Path, use_cargo: bool, rep: Report) -> Workspace:
    ws = Workspace()
    if use_cargo and shutil.which("cargo"):
        try:
            out = subprocess.run(
                ["cargo", "metadata", "--no-deps", "--format-version", "1"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=180,
            )
            if out.returncode == 0:
                data = json.loads(out.stdout)
                for p in data["packages"]:
                    bins = {t["name"] for t in p["targets"] if "bin" in t["kind"]}
                    ws.packages[p["name"]] = {
                        "dir": Path(p["manifest_path"]).parent,
                        "bins": bins,
                    }
                ws.source = "cargo metadata"
            else:
                last = (out.stderr.strip().splitlines() or [""])[-1]
                rep.warn("workspace", f"cargo metadata failed, scanning ms-*/ instead: {last}")
        except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
            rep.warn("workspace", f"cargo metadata unusable ({e}); scanning ms-*/ instead")
    if not ws.packages:
        for d in sorted(root.glob("ms-*")):
            if not (d / "Cargo.toml").is_file():
                continue
            bins = set()
            if (d / "src" / "main.rs").is_file():
                bins.add(d.name)
            for b in (d / "src" / "bin").glob("*.rs"):
                bins.add(b.stem)
            for b in (d / "src" / "bin").glob("*/main.rs"):
                bins.add(b.parent.name)
            ws.packages[d.name] = {"dir": d, "bins": bins}
        ws.source = "ms-*/ directories"
    return ws


ENV_READ_RE = re.compile(
    r'(?:env_or|env_opt|env_parse|env::var|env::var_os)\s*\(\s*"([A-Z][A-Z0-9_]*)"'
)


def vars_read_by_code(root: Path, ws: Workspace) -> dict[str, set[str]]:
    """Variable -> packages whose non-test sources read it."""
    found: dict[str, set[str]] = {}
    for name, p in ws.packages.items():
        src = Path(p["dir"]) / "src"
        for f in src.rglob("*.rs"):
            try:
                text = f.read_text(encoding="utf-8")
            except OSError:
                continue
            for m in ENV_READ_RE.finditer(text):
                found.setdefault(m.group(1), set()).add(name)
    return found


INCLUDE_RE = re.compile(r'include_(?:str|bytes)!\s*\(\s*"([^"]+)"')


def include_paths(root: Path, ws: Workspace) -> list[tuple[Path, Path]]:
    """(source file, included file) for include_str!/include_bytes! in non-test code."""
    pairs = []
    for p in ws.packages.values():
        d = Path(p["dir"])
        files = list((d / "src").rglob("*.rs"))
        if (d / "build.rs").is_file():
            files.append(d / "build.rs")
        for f in files:
            try:
                text = f.read_text(encoding="utf-8")
            except OSError:
                continue
            for m in INCLUDE_RE.finditer(text):
                if "concat!" in m.group(0) or "env!" in m.group(1):
                    continue
                pairs.append((f, (f.parent / m.group(1)).resolve()))
    return pairs


# --------------------------------------------------------------------------------------
# README configuration table
class ReadmeVar:
    def __init__(self, name: str, default: str, scope: set[str] | None) -> None:
        self.name = name
        self.default = default
        self.scope = scope  # None: decided by SERVICE_SCOPES / BACKEND_ONLY / all


def parse_readme(root: Path, rep: Report) -> dict[str, ReadmeVar]:
    path = root / "README.md"
    if not path.is_file():
        rep.error("README", "README.md not found")
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    out: dict[str, ReadmeVar] = {}
    in_section = False
    for line in lines:
        if line.startswith("#"):
            in_section = bool(re.match(r"^#+\s+Configuration\b", line))
            continue
        if not in_section or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        m = re.match(r"^`([A-Z][A-Z0-9_]*)`", cells[0])
        if not m:
            continue
        scope = set(re.findall(r"\((ms-[a-z0-9-]+)\)", " ".join(cells)))
        out[m.group(1)] = ReadmeVar(m.group(1), cells[1].strip("`"), scope or None)
    if not out:
        rep.error("README", "no configuration table found under a '## Configuration' heading")
    return out


def applies_to(var: ReadmeVar, service: str, services: list[str],
               code_vars: dict[str, set[str]] | None = None) -> bool:
    if var.scope:
        return service in var.scope
    readers = (code_vars or {}).get(var.name, set())
    if readers and "ms-common" not in readers:
        # Only read by some services' own crates: it applies to those.
        return service in readers
    if var.name in SERVICE_SCOPES:
        return service in SERVICE_SCOPES[var.name]
    if var.name in BACKEND_ONLY:
        return service != ROUTER
    return service in services


# --------------------------------------------------------------------------------------
# Dockerfile
class Dockerfile:
    def __init__(self) -> None:
        self.global_args: dict[str, str] = {}
        self.stages: list[dict] = []  # {"name", "base", "instr": [(INSTR, args)]}

    def stage(self, name: str) -> dict | None:
        for s in self.stages:
            if s["name"] == name:
                return s
        return None

    @property
    def final(self) -> dict:
        return self.stages[-1]

    def stage_env(self, stage: dict) -> dict[str, str]:
        env: dict[str, str] = {}
        chain = [stage]
        base = stage["base"]
        while True:
            parent = self.stage(base)
            if not parent:
                break
            chain.insert(0, parent)
            base = parent["base"]
        for s in chain:
            for instr, args in s["instr"]:
                if instr == "ENV":
                    env.update(parse_env_instr(args))
        return env


def parse_env_instr(args: str) -> dict[str, str]:
    tokens = shlex.split(args)
    if tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    out = {}
    for t in tokens:
        if "=" in t:
            k, v = t.split("=", 1)
            out[k] = v
    return out


def parse_dockerfile(path: Path) -> Dockerfile:
    df = Dockerfile()
    logical: list[str] = []
    buf = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        logical.append(buf)
        buf = ""
    if buf:
        logical.append(buf)
    current = None
    for line in logical:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        args = args.strip()
        if instr == "FROM":
            parts = args.split()
            parts = [p for p in parts if not p.startswith("--platform")]
            base = parts[0]
            name = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else str(len(df.stages))
            current = {"name": name, "base": base, "instr": []}
            df.stages.append(current)
        elif current is None:
            if instr == "ARG":
                k, _, v = args.partition("=")
                df.global_args[k.strip()] = v.strip().strip('"')
        else:
            current["instr"].append((instr, args))
    return df


def expand(text: str, values: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(3)
        if name in values:
            return values[name]
        default = m.group(2)
        return default if default is not None else m.group(0)

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, text)


def json_or_shell(args: str) -> list[str]:
    args = args.strip()
    if args.startswith("["):
        try:
            return [str(x) for x in json.loads(args)]
        except json.JSONDecodeError:
            pass
    return ["/bin/sh", "-c", args]


class DockerFacts:
    def __init__(self) -> None:
        self.built_bins: set[str] = set()
        self.packages: list[str] = []
        self.expose: set[int] = set()
        self.env: dict[str, str] = {}
        self.user = ""
        self.uid: int | None = None
        self.cmd: list[str] = []
        self.entrypoint: list[str] = []
        self.rust_version = ""
        self.node_version = ""
        self.copy_sources: list[str] = []
        self.static_dest = ""


def check_dockerfile(root: Path, rep: Report, ws: Workspace) -> DockerFacts:
    facts = DockerFacts()
    path = root / "Dockerfile"
    if not path.is_file():
        rep.error("Dockerfile", "Dockerfile not found")
        return facts
    df = parse_dockerfile(path)
    if len(df.stages) < 3:
        rep.error("Dockerfile", f"expected a multi-stage build, found {len(df.stages)} stage(s)")
        return facts
    names = {s["name"] for s in df.stages}
    facts.rust_version = df.global_args.get("RUST_VERSION", "")
    facts.node_version = df.global_args.get("NODE_VERSION", "")

    bases = {s["name"]: expand(s["base"], df.global_args) for s in df.stages}
    if not any(b.startswith("rust:") and b.endswith("-bookworm") for b in bases.values()):
        rep.error("Dockerfile", f"no rust:<version>-bookworm stage (bases: {sorted(bases.values())})")
    if not any(b.startswith("node:") for b in bases.values()):
        rep.error("Dockerfile", "no node stage builds the web client")
    final_base = bases[df.final["name"]]
    if final_base not in ("debian:bookworm-slim",) and "distroless" not in final_base:
        rep.error("Dockerfile", f"runtime stage is {final_base}, expected debian:bookworm-slim")

    all_run = " ".join(a for s in df.stages for i, a in s["instr"] if i == "RUN")
    if "cargo chef prepare" not in all_run or "cargo chef cook" not in all_run:
        rep.error("Dockerfile", "no cargo-chef planner/cook steps (dependency layer cache)")
    if "npm ci" not in all_run or "npm run build" not in all_run:
        rep.error("Dockerfile", "the web client is not built with npm ci && npm run build")

    # COPY --from must name an earlier stage (or an image); collect plain COPY sources.
    for s in df.stages:
        for instr, args in s["instr"]:
            if instr not in ("COPY", "ADD"):
                continue
            tokens = shlex.split(args)
            flags = [t for t in tokens if t.startswith("--")]
            paths = [t for t in tokens if not t.startswith("--")]
            frm = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            if frm is not None:
                if frm not in names and ":" not in frm and "/" not in frm:
                    rep.error("Dockerfile", f"COPY --from={frm}: no stage named {frm}")
            else:
                facts.copy_sources.extend(paths[:-1])

    # What the builder installs.
    builder_stage = None
    for s in df.stages:
        env = df.stage_env(s)
        for instr, args in s["instr"]:
            if instr != "RUN":
                continue
            m = re.search(r"for\s+bin\s+in\s+(.+?);\s*do", args)
            if m and "install" in args:
                builder_stage = s
                tokens = expand(m.group(1), env).split()
                facts.built_bins.update(tokens)
            if "cargo build" in args and "--release" in args:
                pk = re.findall(r"-p\s+([A-Za-z0-9_-]+)", expand(args, env))
                if "STUFFMART_PACKAGES" in args:
                    pk += env.get("STUFFMART_PACKAGES", "").split()
                facts.packages.extend(p for p in pk if p not in facts.packages)
    if not facts.built_bins:
        rep.error("Dockerfile", "cannot find the binary install loop ('for bin in ...; do install ...')")
    if not facts.packages:
        rep.error("Dockerfile", "cannot find 'cargo build --release' with the packages to build")
    final_copies = [a for i, a in df.final["instr"] if i == "COPY"]
    if builder_stage and not any(f"--from={builder_stage['name']}" in a for a in final_copies):
        rep.error("Dockerfile", f"the runtime stage copies nothing from {builder_stage['name']}")

    # Packages exist; binaries come from packages that are built.
    for p in facts.packages:
        if p not in ws.packages:
            rep.error("Dockerfile", f"builds package {p}, which is not in the workspace ({ws.source})")
    built_pkg_bins = set()
    for p in facts.packages:
        built_pkg_bins |= ws.packages.get(p, {}).get("bins", set())
    for b in sorted(facts.built_bins):
        if b in built_pkg_bins:
            continue
        if b in ws.packages and not ws.packages[b]["bins"]:
            rep.warn("Dockerfile", f"installs {b}, but package {b} has no binary target yet "
                     f"(no {b}/src/main.rs): the image build fails until it has one")
        else:
            rep.error("Dockerfile", f"installs binary {b}, which none of the built packages "
                      f"({', '.join(facts.packages)}) has")
    for svc in ws.services:
        if svc not in facts.built_bins:
            rep.error("Dockerfile", f"service binary {svc} is not built and installed in the image")

    # Runtime facts.
    facts.env = df.stage_env(df.final)
    for instr, args in df.final["instr"]:
        if instr == "EXPOSE":
            for p in args.split():
                facts.expose.add(int(p.split("/")[0]))
        elif instr == "USER":
            facts.user = args.split(":")[0]
        elif instr == "CMD":
            facts.cmd = json_or_shell(args)
        elif instr == "ENTRYPOINT":
            facts.entrypoint = json_or_shell(args)
        elif instr == "COPY" and "dist" in args:
            facts.static_dest = shlex.split(args)[-1].rstrip("/")
    if not facts.user or facts.user in ("root", "0"):
        rep.error("Dockerfile", "the runtime stage does not switch to a non-root USER")
    else:
        try:
            facts.uid = int(facts.user)
        except ValueError:
            rep.warn("Dockerfile", f"USER {facts.user} is a name; Kubernetes runAsNonRoot needs a numeric UID")
    if not facts.expose:
        rep.error("Dockerfile", "no EXPOSE")
    static = facts.env.get("STATIC_DIR")
    if not static:
        rep.error("Dockerfile", "STATIC_DIR is not set in the runtime image")
    elif facts.static_dest and static.rstrip("/") != facts.static_dest:
        rep.error("Dockerfile", f"STATIC_DIR={static} but the web client is copied to {facts.static_dest}")
    run_bin = (facts.entrypoint or facts.cmd or [""])[0]
    if run_bin not in facts.built_bins:
        rep.error("Dockerfile", f"default command {run_bin!r} is not a binary the image installs")
    if "curl" not in " ".join(a for i, a in df.final["instr"] if i == "RUN"):
        rep.error("Dockerfile", "curl is not installed in the runtime image (the health checks use it)")
    rep.ok("Dockerfile", f"{len(df.stages)} stages; installs {', '.join(sorted(facts.built_bins))}; "
           f"EXPOSE {' '.join(map(str, sorted(facts.expose)))}; USER {facts.user}")
    return facts


# --------------------------------------------------------------------------------------
# .dockerignore
def dockerignore_rules(root: Path) -> list[tuple[bool, re.Pattern]]:
    path = root / ".dockerignore"
    rules = []
    if not path.is_file():
        return rules
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pat = line[1:] if neg else line
        pat = pat.strip("/")
        rx = ""
        i = 0
        while i < len(pat):
            if pat.startswith("**/", i):
                rx += "(?:.*/)?"
                i += 3
            elif pat.startswith("**", i):
                rx += ".*"
                i += 2
            elif pat[i] == "*":
                rx += "[^/]*"
                i += 1
            elif pat[i] == "?":
                rx += "[^/]"
                i += 1
            else:
                rx += re.escape(pat[i])
                i += 1
        rules.append((neg, re.compile("^" + rx + "$")))
    return rules


def is_ignored(rules: list[tuple[bool, re.Pattern]], relpath: str) -> bool:
    relpath = relpath.strip("/").removeprefix("./")
    if relpath in ("", "."):
        return False
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for neg, rx in rules:
        if any(rx.match(p) for p in prefixes):
            ignored = not neg
    return ignored


def check_dockerignore(root: Path, rep: Report, facts: DockerFacts, ws: Workspace) -> None:
    rules = dockerignore_rules(root)
    if not rules:
        rep.error(".dockerignore", ".dockerignore missing or empty (target/ and node_modules would be sent)")
        return
    for must in ("target", ".git", "web-client/node_modules"):
        if not is_ignored(rules, must):
            rep.error(".dockerignore", f"{must} is not excluded from the build context")
    needed = {"Cargo.toml", "Cargo.lock", "web-client/package.json", "web-client/package-lock.json"}
    for name, p in ws.packages.items():
        needed.add(rel(root, Path(p["dir"])) + "/Cargo.toml")
        needed.add(rel(root, Path(p["dir"])) + "/src")
    for src in facts.copy_sources:
        if src not in (".", "./"):
            needed.add(src.rstrip("/"))
    for n in sorted(needed):
        if is_ignored(rules, n):
            rep.error(".dockerignore", f"{n} is excluded, but the image build needs it")
        elif n.startswith("web-client/") and not (root / n).exists():
            rep.error("Dockerfile", f"COPY source {n} does not exist")
    for src_file, inc in include_paths(root, ws):
        r = rel(root, inc)
        if r.startswith("/") or r.startswith(".."):
            rep.error(".dockerignore", f"{rel(root, src_file)} includes {inc}, outside the build context")
        elif is_ignored(rules, r):
            rep.error(".dockerignore", f"{rel(root, src_file)} includes {r}, which .dockerignore excludes")
    rep.ok(".dockerignore", f"{len(rules)} rules; sources, manifests and included files stay in the context")


# --------------------------------------------------------------------------------------
# Compose
INTERP_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def parse_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        out[k.strip()] = v
    return out


def interpolate(value, env: dict[str, str], used: set[str] | None = None):
    if isinstance(value, dict):
        return {k: interpolate(v, env, used) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, used) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        if used is not None:
            used.add(name)
        op, arg = m.group(2), m.group(3)
        val = env.get(name)
        if op == ":-":
            return val if val else arg
        if op == "-":
            return val if val is not None else arg
        return val or ""

    return INTERP_RE.sub(sub, value)


def service_env(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out
    return {k: "" if v is None else str(v) for k, v in env.items()}


def as_argv(cmd) -> list[str]:
    if cmd is None:
        return []
    if isinstance(cmd, str):
        return shlex.split(cmd)
    return [str(c) for c in cmd]


URL_PORT_RE = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)(/[^\s\"']*)?")


class ComposeFacts:
    def __init__(self) -> None:
        self.raw: dict = {}
        self.services: dict[str, dict] = {}  # app services (our image), interpolated
        self.by_binary: dict[str, str] = {}
        self.env: dict[str, dict[str, str]] = {}
        self.interp_vars: set[str] = set()


def load_compose(root: Path, rep: Report) -> tuple[dict, set[str]]:
    path = root / "docker-compose.yml"
    if not path.is_file():
        rep.error("compose", "docker-compose.yml not found")
        return {}, set()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    used: set[str] = set()
    env = parse_env_file(root / ".env.example")
    data = interpolate(raw, env, used)
    return data, used


def check_compose(root: Path, rep: Report, ws: Workspace, facts: DockerFacts,
                  readme: dict[str, ReadmeVar], code_vars: dict[str, set[str]]) -> ComposeFacts:
    cf = ComposeFacts()
    data, used = load_compose(root, rep)
    if not data:
        return cf
    cf.raw = data
    cf.interp_vars = used
    if "name" in data:
        rep.error("compose", "top-level 'name:' is rejected by docker-compose v1; remove it")
    services = data.get("services") or {}
    for name, svc in services.items():
        image = str(svc.get("image", ""))
        if image.split(":")[0] == IMAGE_REPO or "build" in svc:
            cf.services[name] = svc
    if not cf.services:
        rep.error("compose", f"no service runs the {IMAGE_REPO} image")
        return cf

    for name, svc in cf.services.items():
        where = f"compose:{name}"
        image = str(svc.get("image", ""))
        if image.split(":")[0] != IMAGE_REPO:
            rep.error(where, f"image {image!r} is not {IMAGE_REPO}:<tag> (one image for every service)")
        build = svc.get("build")
        if isinstance(build, dict):
            ctx = root / str(build.get("context", "."))
            dfile = ctx / str(build.get("dockerfile", "Dockerfile"))
            if not dfile.is_file():
                rep.error(where, f"build dockerfile {rel(root, dfile)} not found")
        argv = as_argv(svc.get("entrypoint")) + as_argv(svc.get("command"))
        if not argv:
            argv = facts.entrypoint + facts.cmd
        binary = argv[0] if argv else ""
        if binary not in facts.built_bins:
            rep.error(where, f"command {argv} does not name a binary the Dockerfile installs "
                      f"({', '.join(sorted(facts.built_bins))})")
        if binary.startswith("ms-") and not svc.get("profiles"):
            if binary in cf.by_binary:
                rep.error(where, f"runs {binary}, like {cf.by_binary[binary]}")
            cf.by_binary[binary] = name
        env = dict(facts.env)
        env.update(service_env(svc))
        cf.env[name] = env

    for svc_name in ws.services:
        if svc_name not in cf.by_binary:
            rep.error("compose", f"service binary {svc_name} is not run by any compose service "
                      "(without a profile)")

    # Health checks, ports, dependencies.
    for binary, name in sorted(cf.by_binary.items()):
        svc = cf.services[name]
        env = cf.env[name]
        where = f"compose:{name}"
        is_router = binary == ROUTER
        want_var = "PORT" if is_router else "HEALTH_PORT"
        want = env.get(want_var, "")
        if not want.isdigit():
            rep.error(where, f"{want_var} is not set to a port number (got {want!r})")
            continue
        port = int(want)
        if facts.expose and port not in facts.expose:
            rep.error(where, f"{want_var}={port} is not EXPOSEd by the Dockerfile ({sorted(facts.expose)})")
        if not is_router and "PORT" in service_env(svc):
            rep.warn(where, "sets PORT, which only ms-router reads")
        hc = svc.get("healthcheck") or {}
        test = " ".join(as_argv(hc.get("test")))
        m = URL_PORT_RE.search(test)
        if not m:
            rep.error(where, "no health check against http://127.0.0.1:<port>/...")
        else:
            if int(m.group(1)) != port:
                rep.error(where, f"health check uses port {m.group(1)} but {want_var}={port}")
            if (m.group(2) or "") not in ("/readyz", "/healthz"):
                rep.error(where, f"health check path {m.group(2)} is not /readyz or /healthz")
        ports = svc.get("ports") or []
        if is_router:
            published = []
            for p in ports:
                if isinstance(p, dict):
                    published.append(int(p.get("target")))
                else:
                    published.append(int(str(p).split("/")[0].rsplit(":", 1)[-1]))
            if port not in published:
                rep.error(where, f"PORT={port} is not published (ports: {ports})")
        elif ports:
            rep.error(where, f"publishes {ports}: only ms-router should be reachable from outside")

    for name, svc in cf.services.items():
        where = f"compose:{name}"
        env = cf.env[name]
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            if deps:
                rep.error(where, "depends_on is a list; use 'condition: service_healthy'")
            deps = {d: {} for d in deps}
        for dep, cond in deps.items():
            if dep not in services:
                rep.error(where, f"depends_on {dep}, which is not a service")
                continue
            if (cond or {}).get("condition") != "service_healthy":
                rep.error(where, f"depends_on {dep} without condition: service_healthy")
            if not services[dep].get("healthcheck"):
                rep.error(where, f"waits for {dep} to be healthy, but {dep} has no healthcheck")
        for var in ("AMQP_URL", "MONGODB_URL"):
            url = env.get(var)
            if not url:
                continue
            host = urlsplit(url).hostname or ""
            hosts = [h.split(":")[0] for h in (urlsplit(url).netloc.split("@")[-1]).split(",")]
            for h in hosts or [host]:
                target = next((s for s, d in services.items()
                               if s == h or d.get("hostname") == h), None)
                if target is None:
                    rep.error(where, f"{var} points at host {h!r}, which is no compose service")
                elif target not in deps:
                    rep.error(where, f"{var} uses {target} but does not depend on it (service_healthy)")

    mongo_rs = None
    for name, svc in services.items():
        argv = as_argv(svc.get("command"))
        if "--replSet" in argv:
            mongo_rs = (name, argv[argv.index("--replSet") + 1])
            hc = " ".join(as_argv((svc.get("healthcheck") or {}).get("test")))
            if "rs.initiate" not in hc:
                rep.error(f"compose:{name}", "MongoDB runs --replSet but nothing calls rs.initiate()")
    for name, env in cf.env.items():
        url = env.get("MONGODB_URL")
        if not url:
            continue
        if not mongo_rs:
            rep.error(f"compose:{name}", "MONGODB_URL is set but no MongoDB service runs --replSet")
        elif f"replicaSet={mongo_rs[1]}" not in url:
            rep.error(f"compose:{name}", f"MONGODB_URL lacks replicaSet={mongo_rs[1]} ({url})")

    # Named volumes for stateful services.
    declared = set((data.get("volumes") or {}).keys())
    for name, svc in services.items():
        if name in cf.services:
            continue
        for v in svc.get("volumes") or []:
            src = str(v.get("source") if isinstance(v, dict) else v).split(":")[0]
            if src and not src.startswith((".", "/", "~")) and src not in declared:
                rep.error(f"compose:{name}", f"volume {src} is not declared under top-level volumes")
        if not svc.get("volumes"):
            rep.warn(f"compose:{name}", "keeps its data in the container (no volume)")

    check_env_coverage(rep, "compose", ws, readme, code_vars,
                       {b: cf.env[n] for b, n in cf.by_binary.items()},
                       {n: service_env(s) for n, s in cf.services.items()})
    rep.ok("compose", f"{len(cf.by_binary)} services from the {IMAGE_REPO} image "
           f"({', '.join(sorted(cf.by_binary))}) + {', '.join(sorted(set(services) - set(cf.services)))}")
    return cf


def check_env_coverage(rep: Report, where: str, ws: Workspace, readme: dict[str, ReadmeVar],
                       code_vars: dict[str, set[str]], effective: dict[str, dict[str, str]],
                       explicit: dict[str, dict[str, str]]) -> None:
    """effective: service binary -> env it runs with; explicit: unit -> env it sets itself."""
    services = ws.services or sorted(effective)
    for binary in sorted(effective):
        env = effective[binary]
        missing = []
        for var in readme.values():
            if not applies_to(var, binary, services + [b for b in effective if b not in services],
                              code_vars):
                continue
            if var.name in env or var.name in DELIBERATE_DEFAULTS:
                continue
            missing.append(var.name)
        if missing:
            rep.error(f"{where}:{binary}", "README variables not set (and not deliberately "
                      f"defaulted in check_deploy.py): {', '.join(missing)}")
    known = set(readme) | set(code_vars) | set(KNOWN_EXTRA_VARS)
    for unit, env in sorted(explicit.items()):
        for var in sorted(env):
            if var not in known and not var.startswith("SEED_"):
                rep.error(f"{where}:{unit}", f"sets {var}, which no README row and no code knows (typo?)")


# --------------------------------------------------------------------------------------
# Kubernetes
class K8s:
    def __init__(self) -> None:
        self.docs: list[tuple[str, dict]] = []  # (source file, doc)
        self.namespace = ""
        self.generated_secret_keys: dict[str, set[str]] = {}

    def of_kind(self, kind: str) -> list[tuple[str, dict]]:
        return [(f, d) for f, d in self.docs if d.get("kind") == kind]

    def find(self, kind: str, name: str) -> dict | None:
        for _, d in self.of_kind(kind):
            if d.get("metadata", {}).get("name") == name:
                return d
        return None


def render_kustomization(root: Path, directory: Path, rep: Report, seen=None) -> K8s:
    seen = seen or set()
    out = K8s()
    kfile = next((directory / n for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")
                  if (directory / n).is_file()), None)
    where = f"k8s:{rel(root, directory)}"
    if kfile is None:
        rep.error(where, "no kustomization.yaml")
        return out
    if directory.resolve() in seen:
        rep.error(where, "kustomization cycle")
        return out
    seen = seen | {directory.resolve()}
    k = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    out.namespace = k.get("namespace", "")
    for res in k.get("resources") or []:
        p = (directory / res)
        if p.is_dir():
            sub = render_kustomization(root, p, rep, seen)
            out.docs.extend(sub.docs)
            out.generated_secret_keys.update(sub.generated_secret_keys)
            out.namespace = out.namespace or sub.namespace
        elif p.is_file():
            for d in load_yaml_docs(p):
                out.docs.append((rel(root, p), d))
        else:
            rep.error(where, f"resource {res} does not exist")
    for gen in k.get("secretGenerator") or []:
        keys = set()
        for lit in gen.get("literals") or []:
            keys.add(str(lit).split("=", 1)[0])
        for f in gen.get("files") or []:
            keys.add(str(f).split("=", 1)[0].split("/")[-1])
        for f in gen.get("envs") or []:
            keys |= set(parse_env_file(directory / f))
            if not (directory / f).is_file():
                rep.error(where, f"secretGenerator env file {f} does not exist")
        out.generated_secret_keys[gen["name"]] = keys
        out.docs.append((rel(root, kfile), {"apiVersion": "v1", "kind": "Secret",
                                             "metadata": {"name": gen["name"]},
                                             "data": {k_: "" for k_ in keys}}))
    if out.namespace:
        for _, d in out.docs:
            if d.get("kind") != "Namespace":
                d.setdefault("metadata", {})["namespace"] = out.namespace
    return out


def container_port(container: dict, port) -> int | None:
    for p in container.get("ports") or []:
        if isinstance(port, int) and p.get("containerPort") == port:
            return port
        if isinstance(port, str) and p.get("name") == port:
            return int(p["containerPort"])
    if isinstance(port, int):
        return port  # unnamed, unlisted port: still a port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    return None


def env_names(container: dict, k8s: K8s, template_secret_keys: dict[str, set[str]],
              rep: Report, where: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        if "configMapRef" in src:
            cm_name = src["configMapRef"]["name"]
            cm = k8s.find("ConfigMap", cm_name)
            if cm is None:
                rep.error(where, f"envFrom ConfigMap {cm_name} is not in the rendered manifests")
            else:
                for key, val in (cm.get("data") or {}).items():
                    env[key] = str(val)
        if "secretRef" in src:
            s_name = src["secretRef"]["name"]
            keys = secret_keys(s_name, k8s, template_secret_keys)
            if keys is None and not src["secretRef"].get("optional"):
                rep.error(where, f"envFrom Secret {s_name} is neither rendered nor templated")
            for key in keys or []:
                env[key] = "<secret>"
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            vf = e["valueFrom"]
            if "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                keys = secret_keys(ref["name"], k8s, template_secret_keys)
                if keys is None:
                    rep.error(where, f"{e['name']}: Secret {ref['name']} is neither rendered nor templated")
                elif ref["key"] not in keys:
                    rep.error(where, f"{e['name']}: Secret {ref['name']} has no key {ref['key']}")
            elif "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                cm = k8s.find("ConfigMap", ref["name"])
                if cm is None or ref["key"] not in (cm.get("data") or {}):
                    rep.error(where, f"{e['name']}: ConfigMap {ref['name']} has no key {ref['key']}")
            env[e["name"]] = "<ref>"
        else:
            env[e["name"]] = ""
    return env


def secret_keys(name: str, k8s: K8s, templates: dict[str, set[str]]) -> set[str] | None:
    s = k8s.find("Secret", name)
    if s is not None:
        return set((s.get("data") or {}).keys()) | set((s.get("stringData") or {}).keys())
    return templates.get(name)


def check_k8s_tree(root: Path, rep: Report, label: str, k8s: K8s, ws: Workspace,
                   facts: DockerFacts, readme: dict[str, ReadmeVar],
                   code_vars: dict[str, set[str]], templates: dict[str, set[str]],
                   compose: ComposeFacts) -> dict[str, int]:
    """Checks one rendered kustomization. Returns {binary: port} of the app Deployments."""
    ports_by_binary: dict[str, int] = {}
    effective: dict[str, dict[str, str]] = {}
    explicit: dict[str, dict[str, str]] = {}
    ns = k8s.namespace
    if not ns:
        rep.error(f"k8s:{label}", "kustomization sets no namespace")
    elif not k8s.find("Namespace", ns):
        rep.error(f"k8s:{label}", f"namespace {ns} is not created by the manifests")

    deployments = {}
    for src, d in k8s.of_kind("Deployment"):
        spec = d["spec"]["template"]["spec"]
        containers = spec.get("containers") or []
        app = [c for c in containers if str(c.get("image", "")).split(":")[0].split("/")[-1] == IMAGE_REPO]
        if not app:
            continue
        name = d["metadata"]["name"]
        where = f"k8s:{label}:{name}"
        c = app[0]
        argv = as_argv(c.get("command")) + as_argv(c.get("args"))
        if not argv:
            argv = facts.entrypoint + facts.cmd
        binary = argv[0] if argv else ""
        if binary not in facts.built_bins:
            rep.error(where, f"command {argv} does not name a binary the Dockerfile installs")
            continue
        if binary in deployments:
            rep.error(where, f"runs {binary} like Deployment {deployments[binary]['metadata']['name']}")
        deployments[binary] = d
        if (d["spec"].get("replicas") or 1) < 2:
            rep.error(where, f"replicas is {d['spec'].get('replicas', 1)}, want at least 2")
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(kind) or {}):
                    rep.error(where, f"no resources.{kind}.{r}")
        psc = spec.get("securityContext") or {}
        csc = c.get("securityContext") or {}
        if not (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            rep.error(where, "runAsNonRoot is not set")
        if not csc.get("readOnlyRootFilesystem"):
            rep.error(where, "readOnlyRootFilesystem is not true")
        if csc.get("allowPrivilegeEscalation") is not False:
            rep.error(where, "allowPrivilegeEscalation is not false")
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        if facts.uid is not None and uid is not None and uid != facts.uid:
            rep.warn(where, f"runAsUser {uid} differs from the image's USER {facts.uid}")
        if csc.get("readOnlyRootFilesystem"):
            mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
            if "/tmp" not in mounts:
                rep.warn(where, "read-only root filesystem without a /tmp volume")

        env = dict(facts.env)
        env.update(env_names(c, k8s, templates, rep, where))
        effective[binary] = env
        explicit[name] = {e["name"]: "" for e in c.get("env") or []}
        is_router = binary == ROUTER
        var = "PORT" if is_router else "HEALTH_PORT"
        val = env.get(var, "")
        if not val.isdigit():
            rep.error(where, f"{var} is not set to a port number (got {val!r})")
            continue
        port = int(val)
        ports_by_binary[binary] = port
        if facts.expose and port not in facts.expose:
            rep.error(where, f"{var}={port} is not EXPOSEd by the Dockerfile")
        if not any(p.get("containerPort") == port for p in c.get("ports") or []):
            rep.error(where, f"{var}={port} is not a containerPort")
        cname = compose.by_binary.get(binary)
        if cname:
            cval = compose.env[cname].get(var)
            if cval != val:
                rep.error(where, f"{var}={val} here but {cval} in docker-compose.yml")
        probes = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
        for probe, path in probes.items():
            pr = c.get(probe)
            if pr is None:
                if probe != "startupProbe":
                    rep.error(where, f"no {probe}")
                continue
            hg = pr.get("httpGet")
            if not hg:
                rep.error(where, f"{probe} is not an httpGet probe")
                continue
            if hg.get("path") != path:
                rep.error(where, f"{probe} path is {hg.get('path')}, want {path}")
            pp = container_port(c, hg.get("port"))
            if pp != port:
                rep.error(where, f"{probe} port {hg.get('port')} is {pp}, but {var}={port}")

    for svc in ws.services:
        if svc not in deployments:
            rep.error(f"k8s:{label}", f"service binary {svc} has no Deployment")

    # Services select Deployments and target their ports.
    svc_ports: dict[str, dict] = {}
    for src, s in k8s.of_kind("Service"):
        name = s["metadata"]["name"]
        where = f"k8s:{label}:Service/{name}"
        sel = (s.get("spec") or {}).get("selector") or {}
        targets = []
        for _, d in k8s.of_kind("Deployment") + k8s.of_kind("StatefulSet"):
            labels = d["spec"]["template"]["metadata"].get("labels") or {}
            if sel and all(labels.get(k_) == v for k_, v in sel.items()):
                targets.append(d)
        if not targets:
            rep.error(where, f"selector {sel} matches no Deployment")
            continue
        svc_ports[name] = {}
        for p in s["spec"].get("ports") or []:
            tp = p.get("targetPort", p.get("port"))
            containers = targets[0]["spec"]["template"]["spec"]["containers"]
            if not any(any((isinstance(tp, int) and cp.get("containerPort") == tp) or cp.get("name") == tp
                           for cp in c.get("ports") or []) for c in containers):
                rep.error(where, f"targetPort {tp} is no container port of {targets[0]['metadata']['name']}")
            svc_ports[name][p.get("name")] = p["port"]
            svc_ports[name][p["port"]] = p["port"]
    router = deployments.get(ROUTER)
    for _, ing in k8s.of_kind("Ingress"):
        where = f"k8s:{label}:Ingress/{ing['metadata']['name']}"
        ann = ing["metadata"].get("annotations") or {}
        if ann.get("nginx.ingress.kubernetes.io/affinity") != "cookie":
            rep.error(where, "no cookie affinity (sticky sessions for Socket.IO polling)")
        for key in ("nginx.ingress.kubernetes.io/proxy-read-timeout",
                    "nginx.ingress.kubernetes.io/proxy-send-timeout"):
            if key not in ann:
                rep.error(where, f"no {key} (WebSocket connections would be cut after 60 s)")
        for rule in ing["spec"].get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                be = path["backend"]["service"]
                port = be["port"].get("name", be["port"].get("number"))
                if be["name"] not in svc_ports:
                    rep.error(where, f"backend Service {be['name']} does not exist")
                elif port not in svc_ports[be["name"]]:
                    rep.error(where, f"Service {be['name']} has no port {port}")
                if router is not None and be["name"] != ROUTER:
                    rep.warn(where, f"routes {path.get('path')} to {be['name']}, not {ROUTER}")
    if not k8s.of_kind("Ingress"):
        rep.error(f"k8s:{label}", "no Ingress")
    elif ROUTER in effective and "TRUST_PROXY" in code_vars:
        if effective[ROUTER].get("TRUST_PROXY") != "true":
            rep.error(f"k8s:{label}:{ROUTER}", "behind the Ingress but TRUST_PROXY is not \"true\": "
                      "every client would share the ingress pod's address for rate limits")
    for _, pdb in k8s.of_kind("PodDisruptionBudget"):
        sel = pdb["spec"].get("selector", {}).get("matchLabels") or {}
        if not any(all((d["spec"]["template"]["metadata"].get("labels") or {}).get(k_) == v
                       for k_, v in sel.items()) for _, d in k8s.of_kind("Deployment")):
            rep.error(f"k8s:{label}:PodDisruptionBudget/{pdb['metadata']['name']}",
                      f"selector {sel} matches no Deployment")
    for f, d in k8s.docs:
        if d.get("kind") != "Namespace" and ns and d["metadata"].get("namespace") != ns:
            rep.error(f"k8s:{label}", f"{d['kind']}/{d['metadata'].get('name')} in {f} is not in namespace {ns}")

    for _, cm in k8s.of_kind("ConfigMap"):
        explicit[f"ConfigMap/{cm['metadata']['name']}"] = dict(cm.get("data") or {})
    check_env_coverage(rep, f"k8s:{label}", ws, readme, code_vars, effective, explicit)
    rep.ok(f"k8s:{label}", f"{len(k8s.docs)} resources; Deployments for {', '.join(sorted(deployments))}")
    return ports_by_binary


def check_k8s(root: Path, rep: Report, ws: Workspace, facts: DockerFacts,
              readme: dict[str, ReadmeVar], code_vars: dict[str, set[str]],
              compose: ComposeFacts) -> dict[str, K8s]:
    base = root / "deploy" / "k8s"
    rendered: dict[str, K8s] = {}
    if not (base / "kustomization.yaml").is_file():
        rep.error("k8s", "deploy/k8s/kustomization.yaml not found")
        return rendered
    templates: dict[str, set[str]] = {}
    for t in sorted(base.rglob("*.example.yaml")):
        for d in load_yaml_docs(t):
            if d.get("kind") == "Secret":
                keys = set((d.get("data") or {}).keys()) | set((d.get("stringData") or {}).keys())
                templates[d["metadata"]["name"]] = keys
                for k_, v in (d.get("stringData") or {}).items():
                    if re.search(r"sk_(live|test)_[A-Za-z0-9]{8,}", str(v)):
                        rep.error(f"k8s:{rel(root, t)}", f"{k_} looks like a real Stripe key")
    kdirs = sorted({p.parent for p in base.rglob("kustomization.yaml")})
    listed: set[Path] = set()
    for kd in kdirs:
        k = yaml.safe_load((kd / "kustomization.yaml").read_text(encoding="utf-8")) or {}
        for r in k.get("resources") or []:
            listed.add((kd / r).resolve())
    for f in sorted(base.rglob("*.y*ml")):
        if f.name.startswith("kustomization") or f.name.endswith(".example.yaml"):
            continue
        if f.resolve() not in listed:
            rep.error("k8s", f"{rel(root, f)} is in no kustomization (rename it *.example.yaml if it is a template)")
    entry_points = [base] + [kd for kd in kdirs if kd != base and kd.resolve() not in listed]
    for kd in entry_points:
        label = rel(root, kd)
        k8s = render_kustomization(root, kd, rep)
        rendered[label] = k8s
        check_k8s_tree(root, rep, label, k8s, ws, facts, readme, code_vars, templates, compose)
    return rendered


# --------------------------------------------------------------------------------------
# skaffold, workflow, .env.example
def check_skaffold(root: Path, rep: Report, rendered: dict[str, K8s], facts: DockerFacts) -> None:
    path = root / "skaffold.yaml"
    if not path.is_file():
        rep.error("skaffold", "skaffold.yaml not found")
        return
    docs = load_yaml_docs(path)
    sk = docs[0] if docs else {}
    if not str(sk.get("apiVersion", "")).startswith("skaffold/v4"):
        rep.error("skaffold", f"apiVersion {sk.get('apiVersion')} is not skaffold/v4*")
    if sk.get("kind") != "Config":
        rep.error("skaffold", "kind is not Config")
    arts = (sk.get("build") or {}).get("artifacts") or []
    images = {a.get("image") for a in arts}
    if IMAGE_REPO not in images:
        rep.error("skaffold", f"no build artifact named {IMAGE_REPO} (the Deployments' image)")
    for a in arts:
        ctx = root / a.get("context", ".")
        df = ctx / ((a.get("docker") or {}).get("dockerfile", "Dockerfile"))
        if not df.is_file():
            rep.error("skaffold", f"artifact {a.get('image')}: {rel(root, df)} not found")
    paths = ((sk.get("manifests") or {}).get("kustomize") or {}).get("paths") or []
    if not paths:
        rep.error("skaffold", "manifests.kustomize.paths is empty")
    for p in paths:
        if not (root / p / "kustomization.yaml").is_file():
            rep.error("skaffold", f"kustomize path {p} has no kustomization.yaml")
    for prof in sk.get("profiles") or []:
        for p in (((prof.get("manifests") or {}).get("kustomize") or {}).get("paths") or []):
            if not (root / p / "kustomization.yaml").is_file():
                rep.error("skaffold", f"profile {prof.get('name')}: kustomize path {p} has no kustomization.yaml")
    for pf in sk.get("portForward") or []:
        label = paths[0] if paths else ""
        k8s = rendered.get(label) or next(iter(rendered.values()), None)
        if k8s is None or str(pf.get("resourceType", "")).lower() != "service":
            continue
        svc = k8s.find("Service", pf.get("resourceName"))
        if svc is None:
            rep.error("skaffold", f"portForward: Service {pf.get('resourceName')} not in {label}")
        elif not any(p["port"] == pf.get("port") for p in svc["spec"]["ports"]):
            rep.error("skaffold", f"portForward: Service {pf.get('resourceName')} has no port {pf.get('port')}")
    rep.ok("skaffold", f"artifact {', '.join(sorted(i for i in images if i))}; kustomize {', '.join(paths)}")


def check_workflow(root: Path, rep: Report, facts: DockerFacts) -> None:
    path = root / ".github" / "workflows" / "ci.yml"
    if not path.is_file():
        rep.error("workflow", ".github/workflows/ci.yml not found")
        return
    wf = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    on = wf.get(True, wf.get("on"))  # YAML 1.1 reads the key `on` as True
    triggers = set(on) if isinstance(on, (dict, list)) else {on}
    for t in ("push", "pull_request"):
        if t not in triggers:
            rep.error("workflow", f"not triggered on {t}")
    text = path.read_text(encoding="utf-8")
    wenv = wf.get("env") or {}
    if facts.rust_version and str(wenv.get("RUST_VERSION")) != facts.rust_version:
        rep.error("workflow", f"RUST_VERSION {wenv.get('RUST_VERSION')} but the Dockerfile uses {facts.rust_version}")
    if facts.node_version and str(wenv.get("NODE_VERSION")) != facts.node_version:
        rep.error("workflow", f"NODE_VERSION {wenv.get('NODE_VERSION')} but the Dockerfile uses {facts.node_version}")
    jobs = wf.get("jobs") or {}
    runs_ci = [n for n, j in jobs.items() if any(".ci/run" in str(s.get("run", "")) for s in j.get("steps") or [])]
    if not runs_ci:
        rep.error("workflow", "no job runs .ci/run")
    for n in runs_ci:
        j = jobs[n]
        env = {**wenv, **(j.get("env") or {})}
        if not env.get("MONGODB_URL"):
            rep.error("workflow", f"job {n} runs .ci/run without MONGODB_URL (MongoDB suites skipped)")
        elif "replicaSet=" not in env["MONGODB_URL"]:
            rep.error("workflow", f"job {n}: MONGODB_URL has no replicaSet (transactions need one)")
        if not any("rabbitmq" in str((s or {}).get("image", "")) for s in (j.get("services") or {}).values()):
            rep.error("workflow", f"job {n} has no RabbitMQ service container")
        steps = " ".join(str(s.get("run", "")) for s in j.get("steps") or [])
        if "--replSet" not in steps or "rs.initiate" not in steps:
            rep.error("workflow", f"job {n} does not start MongoDB with --replSet and rs.initiate()")
        uses = " ".join(str(s.get("uses", "")) for s in j.get("steps") or [])
        for need in ("dtolnay/rust-toolchain", "taiki-e/install-action", "actions/setup-node"):
            if need not in uses:
                rep.error("workflow", f"job {n} does not use {need}")
        if "chromium" not in steps:
            rep.error("workflow", f"job {n} does not install Chromium")
    builds = [s for j in jobs.values() for s in j.get("steps") or []
              if str(s.get("uses", "")).startswith("docker/build-push-action")]
    if not builds:
        rep.error("workflow", "no docker/build-push-action step builds the image")
    for s in builds:
        w = s.get("with") or {}
        if w.get("push") not in (False, "false"):
            rep.error("workflow", "docker/build-push-action pushes (want push: false)")
        if str(w.get("file", "Dockerfile")) != "Dockerfile" or not (root / str(w.get("file", "Dockerfile"))).is_file():
            rep.error("workflow", f"build-push-action file {w.get('file')} is not the Dockerfile")
    if "stuffmart:local" not in text:
        rep.warn("workflow", "the image is not tagged stuffmart:local (what docker-compose.yml runs)")
    rep.ok("workflow", f"jobs {', '.join(jobs)}; .ci/run with MongoDB + RabbitMQ; image built without push")


def check_env_example(root: Path, rep: Report, compose: ComposeFacts, facts: DockerFacts) -> None:
    path = root / ".env.example"
    if not path.is_file():
        rep.error(".env.example", ".env.example not found")
        return
    env = parse_env_file(path)
    for k in ENV_EXAMPLE_REQUIRED:
        if k not in env:
            rep.error(".env.example", f"{k} is missing")
    if env.get("STRIPE_SECRET_KEY"):
        rep.error(".env.example", "STRIPE_SECRET_KEY must be empty in the example (never commit a key)")
    for k in sorted(env):
        if k not in compose.interp_vars:
            rep.error(".env.example", f"{k} is not used by docker-compose.yml (it would have no effect)")
    rep.ok(".env.example", f"{', '.join(sorted(env))}")


def check_code_vars(rep: Report, readme: dict[str, ReadmeVar], code_vars: dict[str, set[str]],
                    ws: Workspace) -> None:
    if "HEALTH_PORT" not in code_vars:
        rep.error("code", "no crate reads HEALTH_PORT: backend probes would find no health server")
    if "STATIC_DIR" not in code_vars and ROUTER in ws.packages:
        rep.warn("code", "ms-router does not read STATIC_DIR yet; the image also puts the client at "
                 "web-client/dist under WORKDIR /app, the README default")
    undocumented = sorted(v for v in code_vars if v not in readme and v not in KNOWN_EXTRA_VARS
                          and not v.startswith(("SEED_", "TEST_")))
    for v in undocumented:
        rep.warn("README", f"{v} is read by {', '.join(sorted(code_vars[v]))} but is not in "
                 "the configuration table")
    for v in ("HEALTH_PORT", "STATIC_DIR"):
        if v not in readme:
            rep.warn("README", f"{v} is set by the deployment files but not in the configuration table")


# --------------------------------------------------------------------------------------
# Embedded scripts: Dockerfile RUN lines (sh -n), workflow run: blocks (bash -n),
# mongosh --eval snippets in compose and Kubernetes (parsed by node).
def _walk_eval_snippets(node, out: list[str]) -> None:
    if isinstance(node, dict):
        for v in node.values():
            _walk_eval_snippets(v, out)
    elif isinstance(node, list):
        strs = [x for x in node if isinstance(x, str)]
        if any("mongosh" in x for x in strs) and "--eval" in strs:
            i = node.index("--eval")
            if i + 1 < len(node) and isinstance(node[i + 1], str):
                out.append(node[i + 1])
        for v in node:
            _walk_eval_snippets(v, out)


def check_snippets(root: Path, rep: Report) -> None:
    checked = []
    sh = shutil.which("sh")
    if sh and (root / "Dockerfile").is_file():
        df = parse_dockerfile(root / "Dockerfile")
        n = 0
        for st in df.stages:
            for instr, args in st["instr"]:
                if instr != "RUN" or args.startswith("["):
                    continue
                body = re.sub(r"^(--\S+\s+)+", "", args)
                r = subprocess.run([sh, "-n"], input=body, capture_output=True, text=True)
                n += 1
                if r.returncode != 0:
                    rep.error("Dockerfile", f"RUN in stage {st['name']} is not valid sh: {r.stderr.strip()}")
        checked.append(f"{n} Dockerfile RUN lines (sh -n)")
    bash = shutil.which("bash")
    wf = root / ".github" / "workflows" / "ci.yml"
    if bash and wf.is_file():
        data = yaml.safe_load(wf.read_text(encoding="utf-8")) or {}
        n = 0
        for jname, job in (data.get("jobs") or {}).items():
            for step in job.get("steps") or []:
                run = step.get("run")
                if not run:
                    continue
                body = re.sub(r"\$\{\{[^}]*\}\}", "X", str(run))
                r = subprocess.run([bash, "-n"], input=body, capture_output=True, text=True)
                n += 1
                if r.returncode != 0:
                    rep.error("workflow", f"job {jname}, step {step.get('name', '?')!r}: bash -n: {r.stderr.strip()}")
        checked.append(f"{n} workflow run blocks (bash -n)")
    snippets: list[str] = []
    if (root / "docker-compose.yml").is_file():
        _walk_eval_snippets(yaml.safe_load((root / "docker-compose.yml").read_text(encoding="utf-8")), snippets)
    for f in sorted((root / "deploy").rglob("*.y*ml")) if (root / "deploy").is_dir() else []:
        for d in load_yaml_docs(f):
            _walk_eval_snippets(d, snippets)
    node = shutil.which("node")
    if snippets and node:
        prog = ("const s = JSON.parse(require('fs').readFileSync(0, 'utf8')); let bad = 0;"
                "s.forEach((js, i) => { try { new Function(js) } catch (e) {"
                " bad++; console.log(`snippet ${i + 1}: ${e.message}: ${js}`) } });"
                "process.exit(bad ? 1 : 0)")
        r = subprocess.run([node, "-e", prog], input=json.dumps(snippets), capture_output=True, text=True)
        if r.returncode != 0:
            for line in (r.stdout + r.stderr).strip().splitlines():
                rep.error("mongosh", f"JavaScript does not parse: {line}")
        checked.append(f"{len(snippets)} mongosh --eval snippets (node)")
    elif snippets:
        rep.warn("mongosh", "node not found: the mongosh --eval snippets were not parsed")
    if checked:
        rep.ok("scripts", "; ".join(checked))


# --------------------------------------------------------------------------------------
def run_checks(root: Path, use_cargo: bool, quiet: bool = False) -> Report:
    rep = Report()
    ws = load_workspace(root, use_cargo, rep)
    if not ws.services:
        rep.error("workspace", "no service binaries found (ms-*/src/main.rs)")
    rep.ok("workspace", f"service binaries ({ws.source}): {', '.join(ws.services)}")
    readme = parse_readme(root, rep)
    code_vars = vars_read_by_code(root, ws)
    facts = check_dockerfile(root, rep, ws)
    check_dockerignore(root, rep, facts, ws)
    compose = check_compose(root, rep, ws, facts, readme, code_vars)
    check_env_example(root, rep, compose, facts)
    rendered = check_k8s(root, rep, ws, facts, readme, code_vars, compose)
    check_skaffold(root, rep, rendered, facts)
    check_workflow(root, rep, facts)
    check_code_vars(rep, readme, code_vars, ws)
    check_snippets(root, rep)
    return rep


def compose_env(root: Path, service: str, local: bool, overrides: list[str]) -> int:
    """Prints the environment a compose service runs with: the image's ENV, then the
    service's environment (interpolated with .env.example and the defaults).

    --local turns it into the same settings for a binary started on this machine: hosts of
    compose services become 127.0.0.1, MONGODB_URL is dropped (SQLite under DATA_DIR) and
    image paths under /app/ point into the repository."""
    rep = Report()
    data, _ = load_compose(root, rep)
    svc = (data.get("services") or {}).get(service)
    if svc is None:
        print(f"no compose service {service}", file=sys.stderr)
        return 2
    env: dict[str, str] = {}
    if (root / "Dockerfile").is_file():
        df = parse_dockerfile(root / "Dockerfile")
        env.update(df.stage_env(df.final))
    env.update(service_env(svc))
    if local:
        env.pop("MONGODB_URL", None)
        hosts = set(data["services"]) | {
            s_.get("hostname") for s_ in data["services"].values() if s_.get("hostname")}
        for k, v in list(env.items()):
            for h in hosts:
                v = re.sub(rf"(@|//){re.escape(h)}([:/])", r"\g<1>127.0.0.1\g<2>", v)
            if v.startswith("/app/"):
                v = str(root / v[len("/app/"):])
            env[k] = v
    for o in overrides:
        k, _, v = o.partition("=")
        env[k] = v
    for k, v in env.items():
        print(f"{k}={v}")
    return 0


# --------------------------------------------------------------------------------------
SELF_TEST_FILES = ["Dockerfile", ".dockerignore", "docker-compose.yml", ".env.example",
                   "skaffold.yaml", "README.md", "Cargo.toml", "deploy", ".github", "web-client/package.json",
                   "web-client/package-lock.json", "web-client/.npmrc"]


def self_test(root: Path) -> int:
    def edit(rel_path: str, old: str, new: str, count: int = 1):
        def apply(d: Path):
            p = d / rel_path
            text = p.read_text(encoding="utf-8")
            if old not in text:
                raise AssertionError(f"self-test setup: {old!r} not in {rel_path}")
            p.write_text(text.replace(old, new, count), encoding="utf-8")
        return apply

    def readme_row(d: Path):
        p = d / "README.md"
        text = p.read_text(encoding="utf-8")
        text = text.replace("| `LOG_FORMAT` |", "| `NEW_KNOB` | `1` | a new setting |\n| `LOG_FORMAT` |", 1)
        p.write_text(text, encoding="utf-8")

    def new_service(d: Path):
        (d / "ms-extra" / "src").mkdir(parents=True)
        (d / "ms-extra" / "Cargo.toml").write_text('[package]\nname = "ms-extra"\n')
        (d / "ms-extra" / "src" / "main.rs").write_text("fn main() {}\n")

    cases = [
        ("a compose service missing", edit("docker-compose.yml", 'command: ["ms-order"]', 'command: ["seed"]\n    profiles: ["x"]'),
         "service binary ms-order is not run by any compose service"),
        ("a command naming an unknown binary", edit("docker-compose.yml", 'command: ["ms-stuff"]', 'command: ["ms-stuf"]'),
         "does not name a binary the Dockerfile installs"),
        ("HEALTH_PORT vs health check", edit("docker-compose.yml", 'HEALTH_PORT: "8080"', 'HEALTH_PORT: "8081"'),
         "health check uses port 8080 but HEALTH_PORT=8081"),
        ("a k8s probe on the wrong port", edit("deploy/k8s/base/ms-user.yaml", "value: \"8080\"", "value: \"9090\""),
         "HEALTH_PORT=9090 is not EXPOSEd"),
        ("a k8s probe path", edit("deploy/k8s/base/ms-stuff.yaml", "path: /readyz", "path: /ready"),
         "readinessProbe path is /ready, want /readyz"),
        ("a README variable nobody sets", readme_row, "NEW_KNOB"),
        ("a typo in an env var", edit("deploy/k8s/base/configmap.yaml", "PREFETCH:", "PREFECTH:"),
         "sets PREFECTH"),
        ("a Deployment with one replica", edit("deploy/k8s/base/ms-router.yaml", "replicas: 2", "replicas: 1"),
         "replicas is 1, want at least 2"),
        ("a Secret key that does not exist", edit("deploy/k8s/base/ms-payment.yaml", "key: STRIPE_SECRET_KEY", "key: STRIPE_KEY"),
         "has no key STRIPE_KEY"),
        ("a new service crate", new_service, "service binary ms-extra"),
        ("EXPOSE without the router port", edit("Dockerfile", "EXPOSE 3000 8080", "EXPOSE 8080"),
         "PORT=3000 is not EXPOSEd"),
        ("a Service targeting a missing port", edit("deploy/k8s/base/ms-order.yaml", "targetPort: health", "targetPort: metrics"),
         "targetPort metrics is no container port"),
        ("an unused .env.example key", edit(".env.example", "ORDER_HOLD_SECONDS=900", "ORDER_HOLD_SECONDS=900\nUNUSED_KEY=1"),
         "UNUSED_KEY is not used by docker-compose.yml"),
        ("a Rust version drift", edit(".github/workflows/ci.yml", 'RUST_VERSION: "1.95"', 'RUST_VERSION: "1.94"'),
         "RUST_VERSION 1.94"),
        (".dockerignore dropping sources", edit(".dockerignore", "data\n", "data\nms-*\n"),
         "is excluded, but the image build needs it"),
        ("a mongosh snippet that does not parse", edit("docker-compose.yml", "quit(1) }", "quit(1) }}"),
         "JavaScript does not parse"),
        ("a broken workflow shell step", edit(".github/workflows/ci.yml", "            sleep 2\n          done\n          docker exec", "            sleep 2\n          docker exec"),
         "bash -n"),
        ("a depends_on without health", edit("docker-compose.yml", "condition: service_healthy", "condition: service_started"),
         "without condition: service_healthy"),
    ]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="check-deploy-") as tmp:
        pristine = Path(tmp) / "pristine"
        pristine.mkdir()
        for f in SELF_TEST_FILES:
            src = root / f
            if src.is_dir():
                shutil.copytree(src, pristine / f)
            elif src.is_file():
                (pristine / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, pristine / f)
        for d in root.glob("ms-*"):
            if (d / "Cargo.toml").is_file():
                shutil.copytree(d, pristine / d.name, ignore=shutil.ignore_patterns("target", "tests"))
        base = run_checks(pristine, use_cargo=False)
        if base.errors:
            print("  self-test: the unmodified copy already fails:")
            base.print(quiet=True)
            return 1
        print("  self-test: unmodified copy passes")
        for i, (label, mutate, expect) in enumerate(cases):
            work = Path(tmp) / f"case{i}"
            shutil.copytree(pristine, work)
            mutate(work)
            rep = run_checks(work, use_cargo=False)
            hit = [e for e in rep.errors if expect in e]
            if hit:
                print(f"  self-test ok: {label}: {hit[0]}")
            else:
                failures += 1
                print(f"  self-test FAILED: {label}: expected an error containing {expect!r}, got:")
                for e in rep.errors or ["(no errors)"]:
                    print(f"      {e}")
            shutil.rmtree(work)
    print(f"  self-test: {len(cases) - failures} of {len(cases)} deliberate breaks reported")
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2]))
    ap.add_argument("--no-cargo", action="store_true", help="scan ms-*/ instead of cargo metadata")
    ap.add_argument("--quiet", action="store_true", help="print only warnings and errors")
    ap.add_argument("--compose-env", metavar="SERVICE")
    ap.add_argument("--local", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="with --compose-env: override one variable (e.g. HEALTH_PORT=18081)")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    root = Path(args.root).resolve()
    if args.compose_env:
        return compose_env(root, args.compose_env, args.local, args.set)
    if args.self_test:
        return self_test(root)
    rep = run_checks(root, use_cargo=not args.no_cargo)
    rep.print(quiet=args.quiet)
    print(f"  consistency: {len(rep.errors)} error(s), {len(rep.warnings)} warning(s)")
    return 1 if rep.errors else 0


if __name__ == "__main__":
    sys.exit(main())
