"""A Microsoft 365 Agents SDK (Python 1.9) echo agent behind openline, run as a subprocess by the e2e tests.

Modelled on the SDK's quickstart (agent.py and start_server.py folded into one
file): `AgentApplication` on aiohttp with `MsalConnectionManager`, configured
from the environment by `load_configuration_from_env`. Its outbound token comes
from openline by settings alone (`CONNECTIONS__SERVICE_CONNECTION__SETTINGS__*`
with AUTHORITY={public-url}/adfs, plus SSL_CERT_FILE and REQUESTS_CA_BUNDLE).

The one change to the quickstart: the SDK's `jwt_authorization_middleware`
fetches keys only from Microsoft's hosts, so `openline_jwt_middleware` below
(agents-sdk.md §2.1, option 1) validates openline's channel tokens instead. It
reads OPENLINE_ISSUER and OPENLINE_JWKS_URL.

Usage: PORT=3978 CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID=... python agents_bot.py
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from os import environ

import jwt
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web import Application, Request, Response, StreamResponse, json_response, middleware, run_app
from microsoft_agents.activity import load_configuration_from_env
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter, start_agent_process
from microsoft_agents.hosting.core import (
    AgentApplication,
    Authorization,
    ClaimsIdentity,
    MemoryStorage,
    TurnContext,
    TurnState,
)


# ---- openline channel-token middleware: BEGIN ----
def openline_jwt_middleware() -> Middleware:
    """In place of the SDK's jwt_authorization_middleware: accept only channel tokens signed by openline."""
    issuer = environ["OPENLINE_ISSUER"]  # openline's public URL, the `iss` of its tokens
    keys = jwt.PyJWKClient(environ["OPENLINE_JWKS_URL"])  # {public-url}/v1/.well-known/keys, cached 5 min

    @middleware
    async def authorize(request: Request, handler: Handler) -> StreamResponse:
        config = request.app["agent_configuration"]  # the SERVICE_CONNECTION settings
        header = request.headers.get("Authorization")
        if header is None:
            if not config.ANONYMOUS_ALLOWED:
                return json_response({"error": "Authorization header not found"}, status=401)
            request["claims_identity"] = ClaimsIdentity()
            return await handler(request)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        try:
            if scheme.lower() != "bearer":
                raise jwt.InvalidTokenError("not a Bearer token")
            key = await asyncio.to_thread(keys.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=config.CLIENT_ID,
                issuer=issuer,
                leeway=300,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as e:
            logging.getLogger(__name__).warning("channel token refused: %s: %s", type(e).__name__, e)
            return json_response({"error": "Invalid token or authentication failed."}, status=401)
        request["claims_identity"] = ClaimsIdentity(claims, security_token=token)
        return await handler(request)

    return authorize


# ---- openline channel-token middleware: END ----

logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("microsoft_agents").setLevel(logging.INFO)

agents_sdk_config = load_configuration_from_env(environ)

STORAGE = MemoryStorage()
CONNECTION_MANAGER = MsalConnectionManager(**agents_sdk_config)
ADAPTER = CloudAdapter(connection_manager=CONNECTION_MANAGER)
AUTHORIZATION = Authorization(STORAGE, CONNECTION_MANAGER, **agents_sdk_config)

AGENT_APP = AgentApplication[TurnState](
    storage=STORAGE, adapter=ADAPTER, authorization=AUTHORIZATION, **agents_sdk_config
)


@AGENT_APP.activity("message")
async def on_message(context: TurnContext, _state: TurnState) -> None:
    await context.send_activity(f"echo: {context.activity.text}")


@AGENT_APP.error
async def on_error(context: TurnContext, error: Exception) -> None:
    # As in the quickstart: log the error and tell the user.
    print(f"\n [on_turn_error] unhandled error: {error}", file=sys.stderr)
    traceback.print_exc()
    await context.send_activity("The bot encountered an error or bug.")


async def entry_point(req: Request) -> Response | None:
    agent: AgentApplication[TurnState] = req.app["agent_app"]
    adapter: CloudAdapter = req.app["adapter"]
    return await start_agent_process(req, agent, adapter)


APP = Application(middlewares=[openline_jwt_middleware()])  # the quickstart: [jwt_authorization_middleware]
APP.router.add_post("/api/messages", entry_point)
APP["agent_configuration"] = CONNECTION_MANAGER.get_default_connection_configuration()
APP["agent_app"] = AGENT_APP
APP["adapter"] = ADAPTER  # the quickstart reads AGENT_APP.adapter, deprecated in 1.9

if __name__ == "__main__":
    run_app(APP, host="127.0.0.1", port=int(environ.get("PORT", "3978")))
