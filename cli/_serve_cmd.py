"""``trialflow serve``: the coordinator's web workspace (FastAPI + uvicorn), on loopback unless told otherwise."""

import os
from typing import Annotated

import typer

from ._common import DbOpt, open_store
from ._output import console, fail

app = typer.Typer()


@app.command()
def serve(
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, metavar="PORT", help="TCP port.")] = 8000,
    public: Annotated[bool, typer.Option("--public", help="Allow a non-loopback address; put TLS in front of it "
                                                          "(the session cookie is then sent over HTTPS only).")]
    = False,
    db: DbOpt = None,
) -> None:
    """Serve the web workspace: worklist, patients, forms, decisions, queries, protocol and report.

    Sign in with the store's users (trialflow user add). Sessions are signed cookies; set TRIALFLOW_WEB_SECRET to
    keep them valid across restarts.
    """
    from trialflow.web import is_loopback

    if not is_loopback(host) and not public:
        fail(f"refused: {host} is not a loopback address; the workspace holds patient data, so it listens on "
             "127.0.0.1 unless you add --public (and put TLS in front of it)", code=2)
    try:
        import uvicorn

        from trialflow.web import create_app
    except ImportError as err:  # the web extra is not installed
        fail(f"the web workspace needs the web extra: pip install 'trialflow[web]' ({err.name} is missing)")
    store = open_store(db)
    from trialflow.web import check_servable

    problem = check_servable(store)
    if problem:
        fail(f"refused: {problem}")
    web = create_app(store=store, secret_key=os.environ.get("TRIALFLOW_WEB_SECRET") or None, secure_cookies=public)
    console.print(f"trialflow web workspace on http://{host}:{port}/ (store {store.url}); Ctrl+C stops it",
                  markup=False)
    uvicorn.run(web, host=host, port=port, log_level="warning", server_header=False, access_log=False)
