"""``ctxeval probe``: what an endpoint offers, as JSON."""

from __future__ import annotations

import typer


def register(cli: typer.Typer) -> None:
    @cli.command("probe")
    def probe_command(
        base_url: str = typer.Option(..., "--base-url",
                                     help="server root, e.g. http://127.0.0.1:8000 (a trailing /v1 is dropped)"),
        model: str | None = typer.Option(None, "--model", help="model id; default: the first one /v1/models lists"),
        api_key_env: str | None = typer.Option(None, "--api-key-env",
                                               help="name of the environment variable holding the API key"),
        timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="seconds allowed per request"),
    ) -> None:
        """What an endpoint supports (window, tokenizer, cached tokens, streaming usage, embeddings, tools).

        Prints the probe's findings as JSON; the API key is never printed.

        Exits 1 when the endpoint cannot be reached.
        """
        import asyncio
        import os

        from pydantic import SecretStr, ValidationError

        from evals import Endpoint
        from evals import probe_endpoint as probe

        key: SecretStr | None = None
        if api_key_env:
            value = os.environ.get(api_key_env)
            if not value:
                typer.echo(f"error: --api-key-env: environment variable '{api_key_env}' is not set or empty",
                           err=True)
                raise typer.Exit(2)
            key = SecretStr(value)
        root = base_url.strip().rstrip("/")
        root = root[:-3] if root.endswith("/v1") else root
        try:
            endpoint = Endpoint(name="probe", base_url=root, model=model or "default", api_key=key)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            typer.echo(f"error: {problems}", err=True)
            raise typer.Exit(2) from None
        result = asyncio.run(probe(endpoint, pick_model=model is None, timeout_s=timeout))
        typer.echo(result.model_dump_json(indent=2))
        if not result.reachable:
            raise typer.Exit(1)
