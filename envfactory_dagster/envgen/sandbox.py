"""Run untrusted environment code in a sandboxed subprocess, a batch at a time.

Layout: the caller starts one worker process per batch (`python -m envfactory_dagster.envgen.sandbox
ENTRY POLICY`), inside an empty network namespace (`unshare --net`; without one nothing runs
unless the policy allows it), with an allow-listed environment. The worker pre-imports
pydantic, jsonschema and the environment contract once, then forks one child per job, so a job costs
a fork instead of an interpreter start. Each child, before touching the job:

- gets its own process group, a fresh temp dir as cwd, stdin/stdout/stderr on /dev/null;
- drops root privileges (to `nobody`) when it has them, so RLIMIT_NPROC binds and file
  permissions protect the system (a failed drop ends the job unless the policy allows root);
- sets RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC=0 (no fork, no threads), RLIMIT_CORE=0;
- forgets the network/process/FFI modules (socket, subprocess, ctypes, ...) so importing them
  raises the `import` audit event, and installs an audit hook that refuses sockets, process
  creation, FFI, limit changes and any file write or removal outside its temp dir.

The worker enforces the wall-clock timeout by killing the child's process group and reports each
job as one JSON line; the caller kills and restarts a worker that stops answering, and records the
job it was running as failed, so a batch always completes.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SandboxStatus = Literal[
    "ok", "timeout", "cpu_limit", "killed", "crashed", "bad_output", "worker_died", "unconfined"
]

NOBODY_UID = 65534
NOBODY_GID = 65534

# Modules a sandboxed child must not use; they are dropped from sys.modules in the child so that
# importing them again raises the `import` audit event, which the hook refuses.
DENIED_MODULE_ROOTS = frozenset(
    {
        "socket",
        "_socket",
        "ssl",
        "_ssl",
        "select",
        "selectors",
        "subprocess",
        "_posixsubprocess",
        "multiprocessing",
        "_multiprocessing",
        "concurrent",
        "ctypes",
        "_ctypes",
        "pty",
        "urllib",
        "http",
        "ftplib",
        "smtplib",
        "asyncio",
        "shutil",
        "tempfile",
        "mmap",
        "sqlite3",
        "_sqlite3",
        "webbrowser",
        "resource",
    }
)
# Audit events refused outright (prefix match): network, process creation, FFI, limit changes,
# introspection that finds live objects (a way around the module ban).
DENIED_EVENT_PREFIXES = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "os.setuid",
    "os.setgid",
    "os.chroot",
    "pty.",
    "ctypes.",
    "resource.setrlimit",
    "resource.prlimit",
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "webbrowser.",
    "sqlite3.",
    "mmap.",
)
# File-system mutations allowed only inside the child's temp dir: event -> indexes of path arguments.
PATH_WRITE_EVENTS = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (0, 1),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "shutil.rmtree": (0,),
}
# The only variables of the caller's environment a sandbox worker sees.
WORKER_ENVIRONMENT_ALLOWED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONHASHSEED")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class SandboxLimits(BaseModel):
    """Resource limits of one sandboxed job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_seconds: int = Field(default=5, ge=1)
    memory_mb: int = Field(default=1024, ge=256)  # address space, RLIMIT_AS
    wall_seconds: float = Field(default=10.0, gt=0)
    max_file_mb: int = Field(default=16, ge=1)  # RLIMIT_FSIZE, inside the temp dir
    max_output_mb: int = Field(default=32, ge=1)  # JSON result sent back by the child


class SandboxPolicy(BaseModel):
    """What the sandbox refuses to run without. Both default to failing closed: a machine without
    network namespaces, or a root worker that cannot become `nobody`, verifies nothing unless the
    operator says so explicitly (settings `sandbox_allow_network`, `sandbox_allow_root`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_network: bool = False  # run without an empty network namespace when `unshare` fails
    allow_root: bool = False  # run as root when dropping to `nobody` fails


class SandboxOutcome(BaseModel):
    """What came back from one job: the entry function's JSON result, or why there is none."""

    model_config = ConfigDict(extra="forbid")

    status: SandboxStatus
    result: dict[str, Any] | None = None
    detail: str = ""
    seconds: float = 0.0


class PrivilegeDropError(RuntimeError):
    """The child could not stop being root and the policy does not allow running as root."""


class SandboxViolation(PermissionError):
    """Raised by the audit hook; a PermissionError so library code treats it as an OS refusal."""


# ---------------------------------------------------------------------------------------------
# child side


def _under(path: Any, root: str) -> bool:
    if isinstance(path, int):  # an already open descriptor: it was opened before the hook
        return True
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        path = os.fspath(path)
    real = os.path.realpath(os.path.join(os.getcwd(), path))
    return real == root or real.startswith(root + os.sep)


def make_audit_hook(tmp_dir: str) -> Callable[[str, tuple[Any, ...]], None]:
    """The child's audit hook: refuse network, processes, FFI and writes outside `tmp_dir`."""
    root = os.path.realpath(tmp_dir)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event.startswith(DENIED_EVENT_PREFIXES):
            raise SandboxViolation(f"sandbox: {event} is not allowed")
        if event == "import" and args and str(args[0]).split(".")[0] in DENIED_MODULE_ROOTS:
            raise SandboxViolation(f"sandbox: import of {args[0]!r} is not allowed")
        if event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writes and path is not None and not _under(path, root):
                raise SandboxViolation(f"sandbox: writing {path!r} outside the temp dir is not allowed")
        positions = PATH_WRITE_EVENTS.get(event)
        if positions is not None:
            for position in positions:
                if position < len(args) and args[position] is not None and not _under(args[position], root):
                    raise SandboxViolation(f"sandbox: {event} on {args[position]!r} is not allowed")

    return hook


def _confine_child(tmp_dir: str, limits: SandboxLimits, policy: SandboxPolicy) -> None:
    """Everything a child does to itself before it runs untrusted code (irreversible)."""
    os.setpgid(0, 0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.chdir(tmp_dir)
    if os.geteuid() == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY_GID)
            os.setuid(NOBODY_UID)
        except OSError as exc:  # e.g. inside a user namespace where `nobody` is not mapped
            if not policy.allow_root:
                raise PrivilegeDropError(
                    f"cannot drop root privileges to nobody ({exc}); set sandbox_allow_root to run as root"
                ) from exc
    mb = 1024 * 1024
    cpu = limits.cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_mb * mb, limits.max_file_mb * mb))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.dont_write_bytecode = True
    for name in list(sys.modules):
        if name.split(".")[0] in DENIED_MODULE_ROOTS:
            del sys.modules[name]
    sys.addaudithook(make_audit_hook(tmp_dir))


def _run_child(
    entry: Callable[[dict[str, Any]], dict[str, Any]],
    payload: dict[str, Any],
    tmp_dir: str,
    limits: SandboxLimits,
    write_fd: int,
    policy: SandboxPolicy,
) -> None:
    """Body of a forked child: confine, run the entry, send its JSON result, exit. Never returns."""
    code = 1
    try:
        _confine_child(tmp_dir, limits, policy)
        data = json.dumps({"result": entry(payload)}, default=str).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
        code = 0
    except BaseException as exc:  # the child must reach os._exit whatever the code did
        with contextlib.suppress(BaseException):
            message = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
            os.write(write_fd, message)
    finally:
        os._exit(code)


# ---------------------------------------------------------------------------------------------
# worker side


def _describe_exit(status: int) -> tuple[SandboxStatus, str]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return "cpu_limit", "killed: CPU-time limit exceeded (SIGXCPU)"
        if sig == signal.SIGKILL:
            return "killed", "killed by SIGKILL (likely the memory limit)"
        return "crashed", f"killed by signal {signal.Signals(sig).name}"
    return "crashed", f"exited with status {os.WEXITSTATUS(status)} without a result"


def run_job_in_child(
    entry: Callable[[dict[str, Any]], dict[str, Any]],
    payload: dict[str, Any],
    limits: SandboxLimits,
    on_start: Callable[[int], None] | None = None,
    policy: SandboxPolicy | None = None,
) -> SandboxOutcome:
    """Fork a confined child that runs `entry(payload)`; wait for it under the wall-clock limit."""
    policy = policy or SandboxPolicy()
    tmp_dir = tempfile.mkdtemp(prefix="envsandbox-")
    if os.geteuid() == 0:
        os.chown(tmp_dir, NOBODY_UID, NOBODY_GID)
    read_fd, write_fd = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _run_child(entry, payload, tmp_dir, limits, write_fd, policy)
    os.close(write_fd)
    with contextlib.suppress(OSError):  # the child may already have done it, or exited
        os.setpgid(pid, pid)
    if on_start is not None:
        on_start(pid)
    chunks: list[bytes] = []
    size = 0
    max_bytes = limits.max_output_mb * 1024 * 1024
    deadline = started + limits.wall_seconds
    timed_out = oversized = False
    with selectors.DefaultSelector() as selector:
        selector.register(read_fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                timed_out = True
                break
            if not selector.select(remaining):
                continue
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                oversized = True
                break
            chunks.append(chunk)
    os.close(read_fd)
    if timed_out or oversized:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    seconds = time.perf_counter() - started
    shutil.rmtree(tmp_dir, ignore_errors=True)
    if timed_out:
        return SandboxOutcome(
            status="timeout",
            detail=f"killed after the wall-clock timeout of {limits.wall_seconds:g}s",
            seconds=seconds,
        )
    if oversized:
        return SandboxOutcome(
            status="bad_output", detail=f"result larger than {limits.max_output_mb} MB", seconds=seconds
        )
    raw = b"".join(chunks)
    message: dict[str, Any] | None = None
    if raw:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
    if message is not None and "result" in message and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return SandboxOutcome(status="ok", result=message["result"], seconds=seconds)
    state, detail = _describe_exit(status)
    if message is not None and "error" in message:
        if str(message["error"]).startswith(PrivilegeDropError.__name__):
            return SandboxOutcome(status="unconfined", detail=message["error"], seconds=seconds)
        detail = f"{detail}; last error: {message['error']}"
    return SandboxOutcome(status=state, detail=detail, seconds=seconds)


def _load_entry(spec: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`module:function`; the module's optional `warm_up()` runs once here, before any fork."""
    module_name, _, function_name = spec.partition(":")
    module = importlib.import_module(module_name)
    warm_up = getattr(module, "warm_up", None)
    if warm_up is not None:
        warm_up()
    return getattr(module, function_name)


def worker_main(entry_spec: str, policy_json: str = "{}") -> None:
    """The worker loop: one JSON job per stdin line, one JSON outcome per stdout line."""
    policy = SandboxPolicy.model_validate_json(policy_json)
    entry = _load_entry(entry_spec)
    out = sys.stdout

    def announce(pid: int) -> None:
        out.write(json.dumps({"child_pid": pid}) + "\n")
        out.flush()

    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        limits = SandboxLimits.model_validate(job["limits"])
        outcome = run_job_in_child(entry, job["payload"], limits, on_start=announce, policy=policy)
        out.write(json.dumps({"job_id": job["job_id"], "outcome": outcome.model_dump(mode="json")}) + "\n")
        out.flush()


# ---------------------------------------------------------------------------------------------
# caller side


@functools.cache
def network_isolation_prefix() -> tuple[str, ...]:
    """`unshare --net` (an empty network namespace) when this machine allows it, else nothing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    for prefix in ((unshare, "--net"), (unshare, "--net", "--map-root-user")):
        probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return prefix
    return ()


class SandboxWorker:
    """One worker process; `run(payload)` sends a job and waits for its outcome."""

    def __init__(self, entry_spec: str, policy: SandboxPolicy | None = None) -> None:
        self.entry_spec = entry_spec
        self.policy = policy or SandboxPolicy()
        self.isolated_network = bool(network_isolation_prefix())
        command = [
            *network_isolation_prefix(),
            sys.executable,
            "-m",
            __name__,
            entry_spec,
            self.policy.model_dump_json(),
        ]
        self.cwd = tempfile.mkdtemp(prefix="envsandbox-worker-")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.cwd,
            start_new_session=True,
            env=self._worker_environment(self.cwd),
        )
        self._buffer = b""
        self._child_pid: int | None = None

    @staticmethod
    def _worker_environment(home: str) -> dict[str, str]:
        """An allow-listed environment (never the caller's secrets: what a child prints can reach a
        reviser's prompt), with this package importable from the worker's empty cwd."""
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        kept = {name: os.environ[name] for name in WORKER_ENVIRONMENT_ALLOWED if name in os.environ}
        return {
            **kept,
            "HOME": home,
            "PYTHONPATH": os.pathsep.join(paths),
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def _read_line(self, deadline: float) -> dict[str, Any] | None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or not selector.select(remaining):
                    if time.perf_counter() >= deadline:
                        return None
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return None
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def run(
        self, job_id: int, payload: dict[str, Any], limits: SandboxLimits, startup_seconds: float = 30.0
    ) -> SandboxOutcome | None:
        """The outcome of one job, or None when the worker died or stopped answering."""
        assert self.process.stdin is not None
        line = json.dumps({"job_id": job_id, "payload": payload, "limits": limits.model_dump()})
        try:
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            return None
        # generous: the worker's own timer kills the child at wall_seconds
        deadline = time.perf_counter() + startup_seconds + limits.wall_seconds + 5.0
        while True:
            message = self._read_line(deadline)
            if message is None:
                return None
            if "child_pid" in message:
                self._child_pid = message["child_pid"]
                continue
            self._child_pid = None
            return SandboxOutcome.model_validate(message["outcome"])

    def close(self) -> None:
        """Stop the worker (and a child it was running) and remove its directory."""
        if self._child_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._child_pid, signal.SIGKILL)
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.cwd, ignore_errors=True)


def run_sandboxed(
    entry_spec: str,
    payloads: list[dict[str, Any]],
    limits: SandboxLimits | list[SandboxLimits],
    policy: SandboxPolicy | None = None,
) -> list[SandboxOutcome]:
    """Run `entry(payload)` for every payload in confined children of one worker, in order, under
    `limits` (one for all, or one per payload).

    Fails closed: without an empty network namespace every job is `unconfined` (nothing runs)
    unless `policy.allow_network`; a child that cannot drop root is `unconfined` unless
    `policy.allow_root`.

    A worker that dies or stops answering is replaced; the job it was running is reported as
    `worker_died` and the batch goes on.
    """
    policy = policy or SandboxPolicy()
    if not network_isolation_prefix() and not policy.allow_network:
        detail = (
            "no network namespace: `unshare --net` is unavailable on this machine, so the module would "
            "run with the network; set sandbox_allow_network to verify without network isolation"
        )
        return [SandboxOutcome(status="unconfined", detail=detail) for _ in payloads]
    per_job = limits if isinstance(limits, list) else [limits] * len(payloads)
    outcomes: list[SandboxOutcome] = []
    worker = SandboxWorker(entry_spec, policy)
    try:
        for job_id, (payload, job_limits) in enumerate(zip(payloads, per_job, strict=True)):
            started = time.perf_counter()
            outcome = worker.run(job_id, payload, job_limits)
            if outcome is None:
                worker.close()
                outcome = SandboxOutcome(
                    status="worker_died",
                    seconds=time.perf_counter() - started,
                    detail="the sandbox worker died or stopped answering while running this job",
                )
                worker = SandboxWorker(entry_spec, policy)
            outcomes.append(outcome)
    finally:
        worker.close()
    return outcomes


if __name__ == "__main__":
    worker_main(*sys.argv[1:3])
