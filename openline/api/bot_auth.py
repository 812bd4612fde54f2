"""openline as the bots' token authority: OpenID metadata and keys, the client-credentials token endpoint, the sidecar.

Served at the paths the SDKs look for (bot-connector.md §3d, agents-sdk.md §2-3):

- `/v1/.well-known/openidconfiguration` and its `/v1/.well-known/keys`: what
  botbuilder's `ToBotFromChannelOpenIdMetadataUrl` points at. Each key lists
  the channel ids openline sends in `endorsements`.
- `/adfs/.well-known/openid-configuration`: the authority discovery document
  MSAL reads for an authority `{public-url}/adfs` (MSAL-Python skips Microsoft's
  instance discovery for a first path segment `adfs`), naming
  `/adfs/oauth2/token` and `/adfs/discovery/v2.0/keys` (where the JS Agents SDK
  fetches channel-token keys from `{authorityEndpoint}/discovery/v2.0/keys`).
- `POST /adfs/oauth2/token`: the OAuth2 client-credentials grant, answering in
  the shape MSAL reads (`token_type`, `expires_in`, `access_token`; errors as
  `error`, `error_description`, `error_codes`, ...).
- `GET /sidecar/{secret}/AuthorizationHeaderUnauthenticated/{serviceName}`: the
  Entra auth sidecar API the JS Agents SDK calls with `AUTHTYPE=EntraAuthSideCar`;
  it carries no credential, so the long per-bot secret in the path is the credential.
"""

from __future__ import annotations

import base64
import logging
import time
import urllib.parse
import uuid
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openline.api._http import json_response, media_type, read_body
from openline.auth.bot_auth import BotAuthority, BotCredentials
from openline.auth.bot_tokens import BOTFRAMEWORK_RESOURCE, BotTokens
from openline.logs import printable
from openline.protocol.activity import CHANNEL_ID
from openline.protocol.errors import ServiceError, oauth_error

log = logging.getLogger("openline.botauth")

WARN_INTERVAL = 60.0  # seconds between two warnings of refused credentials for one app id (or the sidecar)
_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})  # MSAL may add these; nothing to grant
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PUBLIC = {"Cache-Control": "public, max-age=3600"}


class TokenRequestError(Exception):
    """An OAuth2 error answer: `error` code, AADSTS-style number and description, HTTP status."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


def token_error_response(e: TokenRequestError) -> Response:
    """The error body MSAL-Python and msal-node read (Entra's shape: RFC 6749 §5.2 plus error_codes and ids)."""
    trace = str(uuid.uuid4())
    body = {
        "error": e.error,
        "error_description": f"AADSTS{e.code}: {e.description} Trace ID: {trace}",
        "error_codes": [e.code],
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": trace,
        "correlation_id": trace,
    }
    headers = dict(_NO_STORE)
    if e.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="openline"'
    return json_response(body, e.status, headers)


class BotAuthApi:
    def __init__(
        self, authority: BotAuthority, tokens: BotTokens, public_url: str, body_timeout: float, max_body: int
    ) -> None:
        self.authority = authority
        self.tokens = tokens
        self.public_url = public_url.rstrip("/")
        self.body_timeout = body_timeout
        self.max_body = max_body  # bytes of a token request (max_form_bytes)
        self._warned: dict[str, tuple[float, int]] = {}  # what -> (when last logged, how many since)

    def _warn(self, subject: str, what: str) -> None:
        """A warning at most once a minute per subject, with how many times it happened: anyone can send
        wrong credentials, and must not be able to flood the log with them."""
        now = time.monotonic()
        last, count = self._warned.get(subject, (-WARN_INTERVAL, 0))
        if now - last < WARN_INTERVAL:
            self._warned[subject] = (last, count + 1)
            return
        if len(self._warned) > 4096:
            self._warned.clear()
        self._warned[subject] = (now, 0)
        log.warning("%s: %s (%d since the last such warning)", subject, what, count + 1)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/.well-known/openidconfiguration", self.channel_metadata, methods=["GET"]),
            Route("/v1/.well-known/keys", self.keys, methods=["GET"]),
            Route("/adfs/.well-known/openid-configuration", self.authority_metadata, methods=["GET"]),
            Route("/adfs/discovery/v2.0/keys", self.keys, methods=["GET"]),
            Route("/adfs/oauth2/token", self.token, methods=["POST"]),
            Route("/adfs/oauth2/authorize", self.authorize, methods=["GET"]),
            Route("/sidecar/{secret}/AuthorizationHeaderUnauthenticated/{service_name}", self.sidecar, methods=["GET"]),
        ]

    # -- discovery ----------------------------------------------------------------------------------

    async def channel_metadata(self, request: Request) -> Response:
        """The OpenID metadata botbuilder reads (only `jwks_uri` is used)."""
        base = self.public_url
        document = {
            "issuer": self.tokens.issuer,
            "authorization_endpoint": f"{base}/adfs/oauth2/authorize",
            "token_endpoint": f"{base}/adfs/oauth2/token",
            "jwks_uri": f"{base}/v1/.well-known/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        }
        return json_response(document, headers=_PUBLIC)

    async def authority_metadata(self, request: Request) -> Response:
        """The authority discovery document MSAL requires (msal-node also reads `issuer` and `jwks_uri`)."""
        base = f"{self.public_url}/adfs"
        document = {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth2/authorize",
            "token_endpoint": f"{base}/oauth2/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["token"],
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": [f"{r}/.default" for r in sorted(self.tokens.resources)],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        }
        return json_response(document, headers=_PUBLIC)

    async def keys(self, request: Request) -> Response:
        """The JWKS: every published key, endorsed for the channel ids openline sends."""
        keys = [
            {**key.public_jwk, "endorsements": [CHANNEL_ID]}
            for key in self.tokens.keyring.keys.published(self.tokens.clock())
        ]
        # short: a rotated key must be seen by the SDKs that refetch on an unknown kid
        return json_response({"keys": keys}, headers={"Cache-Control": "public, max-age=300"})

    async def authorize(self, request: Request) -> Response:
        """Bots get tokens by the client-credentials grant only; interactive sign-in is not offered."""
        error = TokenRequestError(
            400,
            "unsupported_response_type",
            70005,
            "openline issues tokens to bots by the client credentials grant at /adfs/oauth2/token only.",
        )
        return token_error_response(error)

    # -- tokens -------------------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        """OAuth2 client credentials (RFC 6749 §4.4), the client authenticated by its app id and password."""
        try:
            bot, resource = await self._client_credentials(request)
        except TokenRequestError as e:
            return token_error_response(e)
        access_token, lifetime = self.tokens.access_token(bot.app_id or "", resource)
        body = {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }
        return json_response(body, headers=_NO_STORE)

    async def _client_credentials(self, request: Request) -> tuple[BotCredentials, str]:
        if media_type(request) != "application/x-www-form-urlencoded":
            raise TokenRequestError(
                400, "invalid_request", 900144, "The token request must be application/x-www-form-urlencoded."
            )
        try:
            body = await read_body(request, self.max_body, self.body_timeout)
            form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except ServiceError as e:  # too large (413) or too slow (408): the limits' own statuses
            status = oauth_error(e.kind, e.message)[0]
            raise TokenRequestError(status, "invalid_request", 900144, e.message) from None
        except (UnicodeDecodeError, ValueError):
            raise TokenRequestError(
                400, "invalid_request", 900144, "The token request is not valid form data."
            ) from None

        def field(name: str) -> str | None:
            values = form.get(name)
            if values is not None and len(values) > 1:
                raise TokenRequestError(400, "invalid_request", 90015, f"The parameter '{name}' is repeated.")
            return values[0] if values else None

        grant = field("grant_type")
        if grant is None:
            raise TokenRequestError(400, "invalid_request", 900144, "The request body must contain 'grant_type'.")
        if grant != "client_credentials":
            raise TokenRequestError(
                400,
                "unsupported_grant_type",
                70003,
                f"The grant type '{printable(grant)}' is not supported: use client_credentials.",
            )
        client_id, client_secret = self._client_of(request, field("client_id"), field("client_secret"))
        if field("client_assertion") is not None and client_secret is None:
            raise TokenRequestError(
                401, "invalid_client", 7000215, "Certificate credentials are not supported: send the app password."
            )
        if not client_id:
            raise TokenRequestError(400, "invalid_request", 900144, "The request body must contain 'client_id'.")
        if not self.authority.has_app_id(client_id):
            raise TokenRequestError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{printable(client_id)}' was not found: no bot on this service has it.",
            )
        if not client_secret:
            raise TokenRequestError(
                401,
                "invalid_client",
                7000216,
                "The request body must contain 'client_secret' (the bot's app password).",
            )
        bot = self.authority.client(client_id, client_secret)
        if bot is None:
            self._warn(f"app id {printable(client_id)}", "token requests refused: wrong app password")
            self.authority.note_refusal(client_id, "a token request for its app id came with a wrong app password")
            raise TokenRequestError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided: it is not one of the bot's app passwords.",
            )
        return bot, self._resource(field("scope"))

    @staticmethod
    def _client_of(request: Request, client_id: str | None, client_secret: str | None) -> tuple[str | None, str | None]:
        """Client credentials from the body (client_secret_post) or HTTP Basic (client_secret_basic)."""
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return client_id, client_secret
        if client_secret is not None:  # RFC 6749 §2.3: one authentication method per request
            raise TokenRequestError(
                400, "invalid_request", 900144, "Send the client secret in the body or by HTTP Basic, not both."
            )
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise TokenRequestError(401, "invalid_client", 7000215, "The Basic credentials cannot be read.") from None
        if not sep:
            raise TokenRequestError(401, "invalid_client", 7000215, "The Basic credentials cannot be read.")
        basic_id, basic_secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)
        if client_id is not None and client_id != basic_id:
            raise TokenRequestError(400, "invalid_request", 900144, "client_id differs from the Basic credentials.")
        return basic_id, basic_secret

    def _resource(self, scope: str | None, suffix: str = "/.default") -> str:
        """The one resource a scope asks for (`{resource}/.default`, or `{resource}` for the sidecar's
        `optionsOverride.Scopes`); OIDC scopes are ignored."""
        wanted = [s for s in (scope or "").split() if s not in _OIDC_SCOPES]
        accepted = ", ".join(f"{r}{suffix}" for r in sorted(self.tokens.resources))
        if len(wanted) != 1:
            raise TokenRequestError(400, "invalid_scope", 70011, f"The request must ask for one scope: {accepted}.")
        resource = wanted[0].removesuffix(suffix) if wanted[0].endswith(suffix) else ""
        if resource not in self.tokens.resources:
            raise TokenRequestError(
                400,
                "invalid_scope",
                70011,
                f"The scope '{printable(wanted[0])}' is not offered; it is one of {accepted}.",
            )
        return resource

    async def sidecar(self, request: Request) -> Response:
        """`{"authorizationHeader": "Bearer <access token>"}` for the bot whose sidecar secret is in the path."""
        bot = self.authority.sidecar(request.path_params["secret"])
        if bot is None or not bot.app_id:
            self._warn("sidecar", "sidecar token requests with a secret that is no bot's")
            self.authority.note_unknown_sidecar()
            # the Agents SDK logs the title only: say there what to check
            return _problem(404, "Unknown sidecar secret (check SIDECARBASEURL)", "No bot has this sidecar secret.")
        scopes = request.query_params.get("optionsOverride.Scopes")
        try:
            resource = self._resource(scopes, "") if scopes else BOTFRAMEWORK_RESOURCE
        except TokenRequestError as e:
            return _problem(400, "Invalid scope", e.description)
        access_token, _ = self.tokens.access_token(bot.app_id, resource)
        return json_response({"authorizationHeader": f"Bearer {access_token}"}, headers=_NO_STORE)


def _problem(status: int, title: str, detail: str) -> Response:
    """An RFC 9457 problem document, the error shape of the Entra auth sidecar."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(json_response(body).body, status, _NO_STORE, media_type="application/problem+json")
