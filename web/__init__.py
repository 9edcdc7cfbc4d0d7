"""The coordinator's web workspace: the CLI's library functions behind FastAPI, Jinja2 and htmx.

``create_app(db)`` builds the application; ``trialflow serve`` runs it with uvicorn on loopback.
Nothing here decides a rule, a schedule or a permission: every page calls the engine with the
signed-in actor, as the CLI does.
"""

from ._app import SESSION_COOKIE, create_app
from ._security import CSP, is_loopback
from ._serving import check_servable

__all__ = ["CSP", "SESSION_COOKIE", "check_servable", "create_app", "is_loopback"]
