"""A small OpenID Connect provider for tests, on 127.0.0.1 (an ephemeral port, one thread).

It speaks just enough of OpenID Connect Core 1.0 and RFC 7636 for the authorization-code flow
with PKCE: discovery, ``/authorize`` (approves the configured identity at once; honours state,
nonce and an S256 code challenge), ``/token`` (client authentication, single-use codes, the
code verifier checked against the challenge; an RS256 ID token signed with joserfc), ``/jwks``
and ``/userinfo``. :class:`Behaviour` makes it misbehave in the ways a test needs: a wrong
``iss``, ``aud`` or ``nonce`` in the ID token, another signing key, an expired token, a refusal,
a discovery document naming another issuer, claims only in the UserInfo answer. It counts the
requests to each endpoint (``hits``), rotates its signing key on request (:meth:`rotate_key`),
and offers RP-initiated logout (``end_session_endpoint``, ``/logout``) unless told not to.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

__all__ = ["Behaviour", "TestProvider"]

KID = "test-key-1"


@dataclass
class Behaviour:
    """What the provider says about the person, and how it misbehaves (reset for every test)."""

    identity: dict[str, Any] = field(default_factory=dict)
    #: Claims of the ID token replaced after it is built (e.g. {"nonce": "other"}).
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    #: Lifetime of the ID token from now; negative: already expired.
    expires_in: int = 300
    #: Claims left out of the ID token, answered by /userinfo only.
    userinfo_only: set[str] = field(default_factory=set)
    #: Sign ID tokens with a key that is not in the JWKS (same key id).
    foreign_key: bool = False
    #: Send an unsigned ID token ("alg": "none"), which discovery pretends to support.
    unsigned: bool = False
    #: Answer the authorization request with this error instead of a code.
    deny: str | None = None
    #: The issuer the discovery document names (None: its own).
    discovery_issuer: str | None = None
    #: Sign ID tokens with a key id that is in no JWKS (and a key that is in none either).
    unknown_kid: bool = False
    #: Name an end_session_endpoint in discovery (RP-Initiated Logout 1.0).
    end_session: bool = True


class TestProvider:
    """The provider and its state; ``issuer`` is its base URL."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.first_key = self.key = _key(KID)
        self.other_key = _key(KID)
        self.stray_key = _key("nobody-knows-this-key")
        self.behaviour = Behaviour()
        #: Requests per endpoint path, since the last reset.
        self.hits: Counter[str] = Counter()
        #: ID tokens issued, and the query of each request to /logout, since the last reset.
        self.id_tokens: list[str] = []
        self.logouts: list[dict[str, str]] = []
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        #: Why the token endpoint last refused (e.g. "pkce", "code-used"), for assertions.
        self.last_token_error = ""
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        # A short poll: stop() waits up to one poll interval (the default is 0.5 s).
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self, identity: dict[str, Any]) -> None:
        self.behaviour = Behaviour(identity=dict(identity))
        self.last_token_error = ""
        self.key = self.first_key
        self.hits.clear()
        self.id_tokens.clear()
        self.logouts.clear()

    def rotate_key(self, kid: str) -> None:
        """Sign with a new key from now on; the JWKS publishes only the new one."""
        self.key = _key(kid)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- endpoints ------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": self.behaviour.discovery_issuer or base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
            "userinfo_endpoint": f"{base}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "none"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
            **({"end_session_endpoint": f"{base}/logout"} if self.behaviour.end_session else {}),
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """(status, headers, body): a redirect back to the client, or 400 for a bad request."""
        redirect_uri = query.get("redirect_uri", "")
        problems = [
            name
            for name, ok in [
                ("response_type", query.get("response_type") == "code"),
                ("client_id", query.get("client_id") == self.client_id),
                ("redirect_uri", redirect_uri.startswith("http")),
                ("scope", "openid" in query.get("scope", "").split()),
                ("state", bool(query.get("state"))),
                ("nonce", bool(query.get("nonce"))),
                ("code_challenge", len(query.get("code_challenge", "")) == 43),
                ("code_challenge_method", query.get("code_challenge_method") == "S256"),
            ]
            if not ok
        ]
        if problems:
            return 400, {}, f"bad authorization request: {', '.join(problems)}"
        answer: dict[str, str] = {"state": query["state"]}
        if self.behaviour.deny:
            answer["error"] = self.behaviour.deny
        else:
            code = secrets.token_urlsafe(24)
            with self._lock:
                self.codes[code] = {
                    "redirect_uri": redirect_uri,
                    "nonce": query["nonce"],
                    "challenge": query["code_challenge"],
                    "identity": dict(self.behaviour.identity),
                    "used": False,
                }
            answer["code"] = code
        return 302, {"Location": f"{redirect_uri}?{urlencode(answer)}"}, ""

    def _client_authenticated(self, headers: Any, form: dict[str, str]) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            raw = base64.b64decode(auth[6:]).decode()
            client_id, _, secret = raw.partition(":")
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and secrets.compare_digest(secret, self.client_secret)

    def token(self, headers: Any, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        def refuse(status: int, error: str, why: str) -> tuple[int, dict[str, Any]]:
            self.last_token_error = why
            return status, {"error": error}

        if not self._client_authenticated(headers, form):
            return refuse(401, "invalid_client", "client")
        if form.get("grant_type") != "authorization_code":
            return refuse(400, "unsupported_grant_type", "grant")
        with self._lock:
            grant = self.codes.get(form.get("code", ""))
            if grant is None:
                return refuse(400, "invalid_grant", "code-unknown")
            if grant["used"]:
                return refuse(400, "invalid_grant", "code-used")
            grant["used"] = True  # RFC 6749 §4.1.2: a code works once
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return refuse(400, "invalid_grant", "redirect_uri")
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if not verifier or not secrets.compare_digest(challenge, grant["challenge"]):
            return refuse(400, "invalid_grant", "pkce")  # RFC 7636 §4.6
        access_token = secrets.token_urlsafe(32)
        identity = grant["identity"]
        with self._lock:
            self.access_tokens[access_token] = identity
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(identity, grant["nonce"]),
        }

    def id_token(self, identity: dict[str, Any], nonce: str) -> str:
        now = int(time.time())
        behaviour = self.behaviour
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + behaviour.expires_in,
            "auth_time": now,
            "nonce": nonce,
            **{k: v for k, v in identity.items() if k not in behaviour.userinfo_only},
        }
        if behaviour.expires_in < 0:
            claims["iat"] = now + behaviour.expires_in - 600
        claims.update(behaviour.id_token_claims)
        if behaviour.unsigned:
            return f"{_b64json({'alg': 'none'})}.{_b64json(claims)}."
        key = self.other_key if behaviour.foreign_key else self.key
        if behaviour.unknown_kid:
            key = self.stray_key
        token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        self.id_tokens.append(token)
        return token

    def jwks(self) -> dict[str, Any]:
        return dict(KeySet([self.key]).as_dict(private=False))

    def logout(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """RP-Initiated Logout 1.0 §2-3: back to the client's post-logout address, if any."""
        self.logouts.append(dict(query))
        back = query.get("post_logout_redirect_uri")
        if back:
            state = query.get("state")
            return (
                302,
                {"Location": back + (f"?{urlencode({'state': state})}" if state else "")},
                "",
            )
        return 200, {}, "signed out"

    def userinfo(self, headers: Any) -> tuple[int, dict[str, Any]]:
        auth = headers.get("Authorization", "")
        identity = self.access_tokens.get(auth.removeprefix("Bearer ").strip())
        if not auth.startswith("Bearer ") or identity is None:
            return 401, {"error": "invalid_token"}
        return 200, dict(identity)


def _key(kid: str) -> RSAKey:
    params = {"kid": kid, "use": "sig", "alg": "RS256"}
    return RSAKey.generate_key(2048, parameters=params)  # type: ignore[arg-type]


def _b64json(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _handler(provider: TestProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            kind = "text/plain" if isinstance(body, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            provider.hits[url.path] += 1
            if url.path == "/.well-known/openid-configuration":
                self._send(200, provider.discovery())
            elif url.path == "/authorize":
                status, headers, body = provider.authorize(query)
                self._send(status, body, headers)
            elif url.path == "/jwks":
                self._send(200, provider.jwks())
            elif url.path == "/userinfo":
                self._send(*provider.userinfo(self.headers))
            elif url.path == "/logout":
                status, headers, body = provider.logout(query)
                self._send(status, body, headers)
            else:
                self._send(404, "not found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            form = {k: v[0] for k, v in parse_qs(body).items()}
            provider.hits[urlsplit(self.path).path] += 1
            if urlsplit(self.path).path == "/token":
                self._send(*provider.token(self.headers, form))
            else:
                self._send(404, "not found")

    return Handler
