"""The study team: `site add/list` and `user add/list/disable/passwd`. Permissions are the engine's."""

from typing import Annotated

import typer

from ._common import DbOpt, JsonOpt, PasswordStdinOpt, UserOpt, call, open_store, read_new_password, resolve_user
from ._output import console, print_json
from ._tables import Column, print_table

site_app = typer.Typer(help="The study's sites (hospitals); every patient belongs to one.", no_args_is_help=True)
user_app = typer.Typer(help="The study team's users and their roles (never deleted: disabled).", no_args_is_help=True)

CodeArg = Annotated[str, typer.Argument(metavar="CODE", help="Site code, e.g. AMS.", show_default=False)]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Login name (a-z, 0-9, '.', '_', '-').",
                                        show_default=False)]


@site_app.command("add")
def site_add(code: CodeArg, name: Annotated[str, typer.Option("--name", help="The site's name.")],
             db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False,
             as_json: JsonOpt = False) -> None:
    """Add a site (admin). The first site adopts the patients enrolled before any site existed."""
    from trialflow.engine import add_site

    info = call(add_site, open_store(db), resolve_user(user, password_stdin), code, name)
    if as_json:
        print_json(info)
        return
    adopted = f"; {info.patients} existing patient(s) joined it" if info.patients else ""
    console.print(f"site {info.code} added: {info.name}{adopted}", markup=False)


@site_app.command("list")
def site_list(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Every site and how many patients it has."""
    from trialflow.engine import list_sites

    sites = call(list_sites, open_store(db))
    if as_json:
        print_json(sites)
        return
    if not sites:
        console.print("no sites yet (an admin adds one: trialflow site add CODE --name NAME)", markup=False)
        return
    print_table([Column("site"), Column("name", "text"), Column("patients", justify="right"),
                 Column("added", "text", optional=True)],
                [(s.code, s.name, str(s.patients), f"{s.created_at:%Y-%m-%d} by {s.created_by}") for s in sites],
                hint="trialflow site list --json")


@user_app.command("add")
def user_add(
    name: NameArg,
    role: Annotated[str, typer.Option("--role", help="coordinator, investigator, data_manager, monitor or admin.")],
    site: Annotated[list[str] | None, typer.Option("--site", metavar="CODE", help="A site the user works at "
                                                   "(coordinator, investigator; repeat).")] = None,
    full_name: Annotated[str | None, typer.Option("--full-name", help="Printed on signatures, e.g. 'Dr. J. Smit'.")]
    = None,
    db: DbOpt = None, user: UserOpt = None,
    password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False,
) -> None:
    """Add a user (admin). The admin authenticates first, then the new user's password is read.

    With --password-stdin, stdin's first line is the admin's password and the second the new user's;
    otherwise TRIALFLOW_PASSWORD (the admin's) and TRIALFLOW_NEW_PASSWORD, or prompts.
    """
    from trialflow.engine import Actor, add_user, identify

    store = open_store(db)
    admin: Actor = call(identify, store, resolve_user(user, password_stdin))
    password = read_new_password(name, password_stdin)
    info = call(add_user, store, admin, name, role, password, sites=site or (), full_name=full_name)
    if as_json:
        print_json(info)
        return
    where = f" at {', '.join(info.sites)}" if info.sites else ""
    console.print(f"user {info.name} added: {info.role}{where} ({info.full_name})", markup=False)


@user_app.command("list")
def user_list(db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False,
              as_json: JsonOpt = False) -> None:
    """Every user with role, sites and state (admin, data manager, monitor)."""
    from trialflow.engine import list_users

    users = call(list_users, open_store(db), resolve_user(user, password_stdin))
    if as_json:
        print_json(users)
        return
    print_table([Column("user"), Column("full name", "text"), Column("role"), Column("sites", "text", min_width=5),
                 Column("state"), Column("last login after failures", "text", optional=True)],
                [(u.name, u.full_name, u.role, ", ".join(u.sites), "disabled" if u.disabled else "active",
                  f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "") for u in users],
                hint="trialflow user list --json")


@user_app.command("disable")
def user_disable(name: NameArg, reason: Annotated[str | None, typer.Option(help="Why.")] = None, db: DbOpt = None,
                 user: UserOpt = None, password_stdin: PasswordStdinOpt = False, as_json: JsonOpt = False) -> None:
    """Disable a user (admin): they can no longer log in; their events keep their name."""
    from trialflow.engine import disable_user

    info = call(disable_user, open_store(db), resolve_user(user, password_stdin), name, reason)
    if as_json:
        print_json(info)
        return
    console.print(f"user {info.name} disabled", markup=False)


@user_app.command("passwd")
def user_passwd(name: NameArg, db: DbOpt = None, user: UserOpt = None, password_stdin: PasswordStdinOpt = False
                ) -> None:
    """Change a password: your own (after your current one), or anyone's as an admin.

    With --password-stdin, stdin's first line is your current password and the second the new one.
    """
    from trialflow.engine import change_password, identify

    store = open_store(db)
    actor = call(identify, store, resolve_user(user or name, password_stdin))
    new = read_new_password(name, password_stdin)
    call(change_password, store, actor, name, new)
    console.print(f"password of {name.lower()} changed", markup=False)
