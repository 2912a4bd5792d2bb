"""Logging in to a server's web UI over plain HTTP, as a browser does (the login form, then the
session cookie), and the form token every page's forms carry."""

from __future__ import annotations

import re

import httpx


def logged_in(url: str, token: str) -> httpx.Client:
    """An HTTP client logged in through the login form with a personal access token."""
    client = httpx.Client(base_url=url, timeout=60)
    page = client.get("/login")
    nonce = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert nonce is not None, page.text
    answer = client.post(
        "/login", data={"token": token, "login_token": nonce.group(1), "next": "/environments"}
    )
    assert answer.status_code == 303, answer.text
    return client


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)
