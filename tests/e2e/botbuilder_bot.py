"""A sample-style botbuilder-python echo bot (CloudAdapter), run as a subprocess by the e2e tests.

Authentication is off (as in the Emulator) unless the environment gives it an
app id; with the settings of the README's "botbuilder Python" section it
authenticates with openline both ways.
"""

# ruff: noqa: SIM112 -- the environment variable names of the sample (MicrosoftAppId ...) and of botbuilder-js

# Modelled on the official sample 02.echo-bot (app.py, config.py, bots/echo_bot.py) folded into one file:
# the same adapter, authentication, error middleware and handlers. Usage: python botbuilder_bot.py --port 3978

from __future__ import annotations

import argparse
import os
import sys
import traceback

import aiohttp
from aiohttp import web
from aiohttp.web import Request, Response
from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.core.integration import aiohttp_error_middleware
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import ChannelAccount


class DefaultConfig:
    """Bot configuration, as the sample's config.py: an empty app id turns authentication off (as in the Emulator)."""

    PORT = 3978
    APP_ID = os.environ.get("MicrosoftAppId", "")
    APP_PASSWORD = os.environ.get("MicrosoftAppPassword", "")
    APP_TYPE = os.environ.get("MicrosoftAppType", "MultiTenant")
    APP_TENANTID = os.environ.get("MicrosoftAppTenantId", "")
    # The extra lines for a self-hosted channel such as openline (bot-connector.md §3d), read by
    # ConfigurationBotFrameworkAuthentication. All unset (empty), the bot keeps the public-cloud behaviour.
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = os.environ.get("ToBotFromChannelOpenIdMetadataUrl", "")
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = os.environ.get("ToBotFromChannelTokenIssuer", "")
    TO_CHANNEL_FROM_BOT_LOGIN_URL = os.environ.get("ToChannelFromBotLoginUrl", "")
    TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = os.environ.get("ToChannelFromBotOAuthScope", "")


class EchoBot(ActivityHandler):
    async def on_members_added_activity(self, members_added: list[ChannelAccount], turn_context: TurnContext):
        for member in members_added:
            if member.id != turn_context.activity.recipient.id:
                await turn_context.send_activity(f"Welcome, {member.id}!")

    async def on_message_activity(self, turn_context: TurnContext):
        if turn_context.activity.text or not turn_context.activity.attachments:
            await turn_context.send_activity(MessageFactory.text(f"echo: {turn_context.activity.text}"))
        # a file the user sent: the bot fetches it at the URL it was given, as a real bot would
        for attachment in turn_context.activity.attachments or []:
            if attachment.content_url:
                await turn_context.send_activity(MessageFactory.text(await _fetched(attachment.content_url)))


async def _fetched(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        body = await response.read()
        return f"fetched {response.status}: {len(body)} bytes of {response.content_type}"


CONFIG = DefaultConfig()
ADAPTER = CloudAdapter(ConfigurationBotFrameworkAuthentication(CONFIG))


async def on_error(context: TurnContext, error: Exception):
    # As in the sample: log the error and tell the user (the channel still gets a 2xx for the turn).
    print(f"\n [on_turn_error] unhandled error: {error}", file=sys.stderr)
    traceback.print_exc()
    await context.send_activity("The bot encountered an error or bug.")


ADAPTER.on_turn_error = on_error
BOT = EchoBot()


async def messages(req: Request) -> Response:
    return await ADAPTER.process(req, BOT)


APP = web.Application(middlewares=[aiohttp_error_middleware])
APP.router.add_post("/api/messages", messages)


def _ready(*_args: object, **_kwargs: object) -> None:
    # web.run_app calls this once the site is listening (instead of its "Running on ..." banner)
    print("ready", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=CONFIG.PORT)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    web.run_app(APP, host=args.host, port=args.port, print=_ready)
