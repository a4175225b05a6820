"""``ctxeval model …``: serve a GGUF model (the bundled SmolLM2 by default) as an OpenAI-compatible endpoint."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType

import typer

from app.localmodel.server import LocalModelServer, bundled_model_path
from evals import CtxevalError

model_app = typer.Typer(name="model", no_args_is_help=True, add_completion=False,
                        help="A real model on this machine: llama.cpp serving a GGUF file.")


def _fail(error: CtxevalError) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code=2)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@model_app.command("path")
def model_path() -> None:
    """Print the path of the GGUF file bundled with the 'local' extra."""
    try:
        typer.echo(str(bundled_model_path()))
    except CtxevalError as e:
        raise _fail(e) from e


@model_app.command("serve")
def model_serve(
    model: str = typer.Option("", "--model", envvar="CTXEVAL_LLM_MODEL",
                              help="GGUF file to serve; empty: the bundled SmolLM2-135M-Instruct"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0 in a container)"),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="port; 0 picks a free one"),
    n_ctx: int = typer.Option(8192, "--n-ctx", min=1, help="context window in tokens"),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads; 0: every core this process may use"),
    alias: str = typer.Option("", "--alias", help="model id the server reports; default: from the file name"),
    log: Path | None = typer.Option(None, "--log", help="server log file; default: a new temporary file"),
    startup_timeout: float = typer.Option(300.0, "--startup-timeout", min=1.0,
                                          help="seconds to wait for the model to load"),
) -> None:
    """Serve a model until Ctrl-C (or SIGTERM), then stop it cleanly."""
    try:
        server = LocalModelServer(model or None, host=host, port=port or None, n_ctx=n_ctx,
                                  threads=threads or None, alias=alias or None, log_path=log,
                                  startup_timeout_s=startup_timeout)
        typer.echo(f"loading {server.model_path or bundled_model_path()} …", err=True)
        server.start()
    except CtxevalError as e:
        raise _fail(e) from e
    previous = {sig: signal.signal(sig, _terminate) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        typer.echo(f"base URL: {server.base_url}  (OpenAI clients: {server.base_url}/v1)")
        typer.echo(f"model: {server.model}")
        typer.echo(f"context window: {server.n_ctx} tokens, threads: {server.threads}, "
                   f"ready in {server.startup_s or 0:.1f} s, log: {server.log_path}")
        typer.echo("serving; press Ctrl-C to stop", err=True)
        while server.running:
            time.sleep(0.5)
        typer.echo(f"error: the model server exited; last lines of its log:\n{server.log_tail()}", err=True)
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        exit_code = server.stop()
        # uvicorn ends a graceful shutdown by re-raising SIGTERM, hence -15
        clean = exit_code in (0, -signal.SIGTERM)
        typer.echo("stopped" if clean else f"stopped (server exit code {exit_code})", err=True)
    if code:
        raise typer.Exit(code=code)
