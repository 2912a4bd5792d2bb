"""``kiln login``, ``kiln token create|list|revoke`` and ``kiln audit``: accounts of a team
server, through its API (``audit`` also reads a local registry directly)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kiln.cli.output import add_json, emit_json, emit_table, warn


def _server(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", metavar="URL", help="the server (default: an http KILN_WORKSPACE, or login)"
    )


def add_parser(groups: Any) -> None:
    p = groups.add_parser("login", help="store a token for a Kiln server (read from stdin)")
    p.add_argument("url", metavar="URL")
    add_json(p, "account")
    p.set_defaults(handler=login)

    token = groups.add_parser("token", help="personal access tokens of a team server")
    commands = token.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    c = commands.add_parser("create", help="make a token for a user (shown once)")
    c.add_argument("owner", metavar="NAME", help="the user the token belongs to")
    c.add_argument("--role", choices=["reader", "contributor", "admin"], help="the user's role")
    c.add_argument("--label", default="cli", help="a name for the token")
    c.add_argument(
        "--expires-in",
        type=float,
        metavar="DAYS",
        help="the token stops working after DAYS days (default: until revoked)",
    )
    _server(c)
    add_json(c, "token-created")
    c.set_defaults(handler=token_create)
    c = commands.add_parser("list", help="tokens (admins: everyone's)")
    _server(c)
    add_json(c, "token-list")
    c.set_defaults(handler=token_list)
    c = commands.add_parser("revoke", help="revoke a token by its id")
    c.add_argument("token_id", metavar="ID", type=int)
    _server(c)
    add_json(c, "token")
    c.set_defaults(handler=token_revoke)

    a = groups.add_parser("audit", help="who changed what, and when (admins)")
    a.add_argument("--since", metavar="TIME", help="from this ISO-8601 time on (UTC by default)")
    a.add_argument("--limit", type=int, default=100, help="at most this many, newest first")
    a.add_argument("--offset", type=int, default=0, help="skip this many of the newest")
    _server(a)
    add_json(a, "audit-entry-list")
    a.set_defaults(handler=audit)


def _client(args: argparse.Namespace) -> Any:
    from kiln.credentials import login_for
    from kiln.httpclient import ServerClient

    found = login_for(args.server)
    return ServerClient(found.url, found.token)


def _read_token() -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("token: ").strip()
    return sys.stdin.readline().strip()


def login(args: argparse.Namespace) -> int:
    from kiln.credentials import normal_url, save_login
    from kiln.errors import UsageError
    from kiln.httpclient import ServerClient

    url = normal_url(args.url)
    token = _read_token()
    if not token:
        raise UsageError("no token given; paste the token `kiln token create` printed")
    account = ServerClient(url, token).request("GET", "/whoami")
    path = save_login(url, token)
    if args.json:
        emit_json(account)
    else:
        print(f"Logged in to {url} as {account['name']} ({account['role']}); token in {path}")
    return 0


def token_create(args: argparse.Namespace) -> int:
    body = {"owner": args.owner, "role": args.role, "name": args.label}
    if args.expires_in is not None:
        body["expires_in_days"] = args.expires_in
    made = _client(args).request("POST", "/tokens", json=body)
    if args.json:
        emit_json(made)
    else:
        print(made["token"])
        warn(f"token {made['id']} for {made['owner']} ({made['role']}) is shown only once")
    return 0


def token_list(args: argparse.Namespace) -> int:
    found = _client(args).request("GET", "/tokens")
    if args.json:
        emit_json(found)
        return 0
    rows = [
        (t["id"], t["owner"], t["name"], t["created_at"], t["last_used_at"], t["expires_at"],
         t["revoked_at"])
        for t in found
    ]  # fmt: skip
    emit_table(["id", "owner", "name", "created", "last used", "expires", "revoked"], rows)
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    revoked = _client(args).request("POST", f"/tokens/{args.token_id}/revoke")
    if args.json:
        emit_json(revoked)
    else:
        print(f"Revoked token {revoked['id']} of {revoked['owner']}")
    return 0


def _since(text: str | None) -> Any:
    if text is None:
        return None
    import datetime as dt

    from kiln.errors import UsageError

    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since {text!r} is not an ISO-8601 time; write e.g. 2026-12-05T08:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _remote(args: argparse.Namespace) -> bool:
    import os

    return bool(args.server) or os.environ.get("KILN_WORKSPACE", "").startswith(
        ("http://", "https://")
    )


def audit(args: argparse.Namespace) -> int:
    since = _since(args.since)
    if _remote(args):
        params = {"limit": args.limit, "offset": args.offset}
        params.update({"since": since.isoformat()} if since else {})
        entries = _client(args).request("GET", "/audit", params=params)
    else:  # whoever can open the registry itself reads its audit table
        from kiln.accounts import audit_entries
        from kiln.cli.common import existing_workspace

        entries = audit_entries(
            existing_workspace(args), since=since, limit=args.limit, offset=args.offset
        )
    if args.json:
        emit_json(entries)
    else:
        rows = [(e["at"], e["actor"], e["action"], e["object"]) for e in entries]
        emit_table(["time", "actor", "action", "object"], rows)
    return 0
