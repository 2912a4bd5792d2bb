"""``python -m kiln.serving.supervisor WORKSPACE NAME``: the process behind a deployment.

It binds the listening socket once (so the scoring URI survives updates), materializes the
environment (held in the cache while it serves, so garbage collection leaves it alone), and runs
the scoring runtime's workers on the environment's interpreter (or, for a container
deployment, in containers of its image: ``containers``), all accepting on that socket.
An update (SIGHUP) starts a new generation of workers beside the old, waits until every one has
run ``init()`` and the service answers, then stops the old ones: no request is refused on the
way. A worker that dies is restarted; the workers die with the supervisor.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

from kiln.errors import KilnError
from kiln.serving import containers, deployments, generations
from kiln.serving.deployments import DeploymentSpec
from kiln.serving.generations import Generation
from kiln.serving.specs import address_family
from kiln.workspace import Workspace

READY_TIMEOUT_SECONDS = 600.0  # init() may load a large model
STOP_GRACE_SECONDS = 30.0


def _die_with_parent() -> None:
    """In each worker, before exec: SIGTERM when the supervisor dies (Linux), so a killed
    supervisor never leaves workers serving an unsupervised, unrecorded service."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Supervisor:
    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name
        self.folder = deployments.folder(workspace, name)
        self.log = (self.folder / deployments.LOG_FILE).open("ab", buffering=0)
        self.reload = False
        self.stopping = False
        self.kind = deployments.PROCESS
        self.health: socket.socket | None = None  # the liveness port's socket, when asked for

    def say(self, text: str) -> None:
        self.log.write(f"[kiln] {text}\n".encode())

    # ---------------------------------------------------------------- generations

    def _prepare(self, number: int, spec: DeploymentSpec) -> Generation:
        return generations.prepare(
            self.workspace,
            number,
            spec,
            self.folder / f"g{number}",
            in_container=self.kind == deployments.CONTAINER,
            reporter=_Reporter(self),
        )

    def _spawn(
        self, generation: Generation, listener: socket.socket
    ) -> tuple[subprocess.Popen[bytes], int]:
        read_end, write_end = os.pipe()
        health = self.health.fileno() if self.health is not None else None
        fds: tuple[int, ...] = (listener.fileno(), write_end, *([health] if health else []))
        preexec = _die_with_parent
        if generation.image is None:
            argv = [*generation.argv, "--listen-fd", str(fds[0]), "--ready-fd", str(fds[1])]
            if health is not None:
                argv += ["--health-listen-fd", str(health)]
        else:
            name = containers.container_name(self.name, generation.number)
            argv = containers.run_argv(
                generation.image,
                name=name,
                owner=containers.label(self.workspace, self.name),
                names=generation.variables,
                source=generation.folder / "src",
                models=generation.folder / "models",
                command=generation.argv,
                health=health is not None,
            )

            def preexec(
                listen_fd: int = fds[0], ready_fd: int = fds[1], health_fd: int | None = health
            ) -> None:
                _die_with_parent()  # podman passes the SIGTERM on to the container
                containers.move_fds(listen_fd, ready_fd, health_fd)

            fds = (containers.LISTEN_FD, containers.READY_FD)
            if health is not None:
                fds += (containers.HEALTH_FD,)
        try:
            worker = subprocess.Popen(
                argv,
                cwd=generation.folder / "src",
                env=generation.env,
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                pass_fds=fds,
                preexec_fn=preexec,  # the supervisor runs no threads
            )
        finally:
            os.close(write_end)
        if generation.image is not None:
            generation.containers[worker.pid] = name
        return worker, read_end

    def _await_ready(
        self, generation: Generation, worker: subprocess.Popen[bytes], read_end: int
    ) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        try:
            while True:
                ready, _, _ = select.select([read_end], [], [], 0.2)
                if ready and os.read(read_end, 64).startswith(b"ready"):
                    return
                code = worker.poll()
                if code is not None or ready:  # exited, or closed the pipe without "ready"
                    code = worker.wait()
                    if generation.image is not None and code in containers.ENGINE_FAILED:
                        raise KilnError(
                            "podman could not start the container; its message is in the "
                            "deployment's log (`kiln deploy logs`)"
                        )
                    raise KilnError(
                        f"the scoring script failed to start (exit code {code}); its init() "
                        "traceback is in the deployment's log (`kiln deploy logs`)"
                    )
                if time.monotonic() > deadline or self.stopping:
                    self._kill(generation, worker)
                    raise KilnError(
                        f"the scoring script did not finish init() within {READY_TIMEOUT_SECONDS:.0f} s"
                    )
        finally:
            os.close(read_end)

    def _kill(self, generation: Generation, worker: subprocess.Popen[bytes]) -> None:
        name = generation.containers.pop(worker.pid, None)
        if name is None:
            worker.kill()
            worker.wait()
        else:
            containers.kill(worker, name)

    def start(self, generation: Generation, listener: socket.socket) -> None:
        try:
            for _ in range(generation.spec.workers):
                worker, read_end = self._spawn(generation, listener)
                generation.workers.append(worker)
                self._await_ready(generation, worker, read_end)
            self._health_check(listener)
        except BaseException:
            self.stop(generation, grace=2.0)
            raise
        self.say(f"generation {generation.number}: {len(generation.workers)} worker(s) ready")

    def _health_check(self, listener: socket.socket) -> None:
        host, port = listener.getsockname()[:2]
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            if response.status != 200:
                raise KilnError(f"the health check GET / answered {response.status}")
        except OSError as exc:
            raise KilnError(f"the health check GET / failed: {exc}") from None
        finally:
            connection.close()

    def stop(self, generation: Generation, *, grace: float = STOP_GRACE_SECONDS) -> None:
        for worker in generation.workers:
            if worker.poll() is None:
                worker.terminate()  # finishes the requests in flight, then exits
        deadline = time.monotonic() + grace
        for worker in generation.workers:
            try:
                worker.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill(generation, worker)
        if generation.containers:  # what podman left (its client killed, say) goes now
            try:
                containers.remove(list(generation.containers.values()), grace=0)
                generation.containers.clear()
            except KilnError as exc:
                self.say(f"{exc}")
        generation.ready.release()
        shutil.rmtree(generation.folder, ignore_errors=True)

    def _restart_dead_workers(self, generation: Generation, listener: socket.socket) -> None:
        for index, worker in enumerate(generation.workers):
            code = worker.poll()
            if code is None:
                continue
            self.say(f"worker {worker.pid} exited with code {code}; starting another")
            generation.containers.pop(worker.pid, None)  # podman removed it (--rm)
            replacement, read_end = self._spawn(generation, listener)
            generation.workers[index] = replacement
            try:
                self._await_ready(generation, replacement, read_end)
                deployments.set_fields(self.workspace, self.name, **generation.serving_fields())
            except Exception as exc:  # keep serving with the workers that are left
                self.say(f"restart failed: {exc}")
                time.sleep(1.0)  # do not spin on a worker that keeps dying

    # ---------------------------------------------------------------- main loop

    def serve(self) -> int:
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "reload", True))
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: setattr(self, "stopping", True))
        try:
            record = deployments.get(self.workspace, self.name)
            self.kind = record.kind
            listener = socket.create_server(
                (record.host, record.port or 0), family=address_family(record.host), backlog=1024
            )
            deployments.set_fields(self.workspace, self.name, port=listener.getsockname()[1])
            if record.spec.health_port is not None:
                self.health = _bind_health(record.host, record.spec.health_port)
            current = self._prepare(record.generation, record.spec)
            self.start(current, listener)
        except Exception as exc:  # anything: the record must say Failed, not stay Transitioning
            reason = str(exc) if isinstance(exc, KilnError) else f"{type(exc).__name__}: {exc}"
            self.say(f"failed: {reason}")
            deployments.set_fields(
                self.workspace, self.name, state=deployments.FAILED, error=reason
            )
            return 1
        deployments.set_fields(
            self.workspace,
            self.name,
            state=deployments.HEALTHY,
            applied_generation=current.number,
            error=None,
            **current.serving_fields(),
        )
        self.say(f"serving http://{record.host}:{listener.getsockname()[1]}/score")
        beat, every = time.monotonic(), deployments.heartbeat_seconds()
        try:
            while not self.stopping:
                time.sleep(0.1)
                if time.monotonic() - beat > every:
                    beat = time.monotonic()
                    self._heartbeat()
                if self.reload:
                    self.reload = False
                    current = self._update(current, listener)
                self._restart_dead_workers(current, listener)
        finally:
            self.stop(current)
            listener.close()
            if self.health is not None:
                self.health.close()
            with contextlib.suppress(KilnError):
                deployments.set_fields(
                    self.workspace,
                    self.name,
                    state=deployments.STOPPED,
                    **current.serving_fields(),
                )
            self.say("stopped")
        return 0

    def _heartbeat(self) -> None:
        """Tell the record this supervisor still serves (its updated_at): a machine that reads
        it from elsewhere cannot look for the process, and shows it Unknown once this stops."""
        try:
            deployments.set_fields(self.workspace, self.name)
        except KilnError as exc:  # a server away for a moment: the next beat tries again
            self.say(f"cannot report to the deployment's record ({exc})")

    def _update(self, current: Generation, listener: socket.socket) -> Generation:
        try:
            record = deployments.get(self.workspace, self.name)
        except KilnError as exc:  # a team server away for a moment: ask again in a second
            self.say(f"cannot read the deployment's record ({exc}); trying again")
            time.sleep(1.0)
            self.reload = True
            return current
        if record.generation <= current.number:
            return current
        try:
            new = self._prepare(record.generation, record.spec)
            self.start(new, listener)
        except Exception as exc:  # whatever went wrong, the old generation keeps serving
            reason = str(exc) if isinstance(exc, KilnError) else f"{type(exc).__name__}: {exc}"
            message = f"update to generation {record.generation} failed, generation {current.number} still serves: {reason}"
            self.say(message)
            deployments.set_fields(
                self.workspace, self.name, state=deployments.HEALTHY, error=message
            )
            return current
        self.stop(current)  # the new workers already accept on the same socket
        deployments.set_fields(
            self.workspace,
            self.name,
            state=deployments.HEALTHY,
            applied_generation=new.number,
            error=None,
            **new.serving_fields(),
        )
        self.say(f"generation {new.number} serves; generation {current.number} stopped")
        return new


def _bind_health(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port), family=address_family(host), backlog=128)
    except OSError as exc:
        raise KilnError(
            f"`health_port`: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "delete the deployment and create it with another --health-port"
        ) from None


class _Reporter:
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def phase(self, name: str) -> None:
        self.supervisor.say(f"environment: {name}")

    def detail(self, text: str) -> None:
        pass  # uv's progress is for a terminal, not for this log

    def message(self, text: str) -> None:
        self.supervisor.say(text)


def main(argv: list[str]) -> int:
    workspace_path, name = argv
    containers.reserve_fds()  # first: before anything else opens a file
    return Supervisor(Workspace(workspace_path), name).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
