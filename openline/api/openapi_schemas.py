"""The wire shapes of every API as JSON Schema (2020-12, what OpenAPI 3.1 uses), written once for `api.openapi`.

Request shapes say what the code accepts (`protocol.v3.start_parameters`, `protocol.v1.message_to_activity`,
`protocol.connector`, `api.v3._client_activity`); response shapes say what it answers. Activities stay open
objects (unknown fields are never dropped), so only the fields the service reads or sets are described.
Sources: directline-3.0.md, directline-1.1.md and bot-connector.md (the official Swagger documents' types).
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(type_: str) -> Schema:
    return {"type": [type_, "null"]}


_STRING: Schema = {"type": "string"}
_OBJECT: Schema = {"type": "object"}
_OPEN: Schema = {"type": "object", "additionalProperties": True}
# what a client's and a bot's activity may carry alike
_SENT_CONTENT: Schema = {
    "text": _STRING,
    "replyToId": _STRING,
    "attachments": {"type": "array", "items": _OBJECT},
    "entities": {"type": "array"},
    "channelData": _OBJECT,
    "suggestedActions": _OBJECT,
}

# -- errors -------------------------------------------------------------------------------------------

_ERRORS: dict[str, Schema] = {
    "ErrorResponse": {
        "description": "Direct Line 3.0, the Bot Connector API, the admin API and the rest: `ErrorResponse`.",
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["BadArgument", "NotFound", "BotTimeout"]},
                    "message": _STRING,
                    "innerHttpError": {
                        "description": "The bot's own status, when the bot caused the failure.",
                        "type": "object",
                        "required": ["statusCode"],
                        "properties": {"statusCode": {"type": "integer"}},
                    },
                },
            }
        },
    },
    "ErrorMessage": {
        "description": "Direct Line 1.1 (and file links): the Swagger's `ErrorMessage`, `statusCode` the HTTP status.",
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "statusCode"],
                "properties": {
                    "code": {
                        "enum": [
                            "MissingProperty",
                            "MalformedData",
                            "NotFound",
                            "ServiceError",
                            "Internal",
                            "InvalidRange",
                            "NotSupported",
                            "NotAllowed",
                            "BadCertificate",
                        ]
                    },
                    "message": _STRING,
                    "statusCode": {"type": "integer"},
                },
            }
        },
    },
    "OAuthError": {
        "description": "The bots' token authority (`/adfs/...`): RFC 6749 §5.2, with Entra's extra fields.",
        "type": "object",
        "required": ["error", "error_description"],
        "properties": {
            "error": _STRING,
            "error_description": _STRING,
            "error_codes": {"type": "array", "items": {"type": "integer"}},
            "timestamp": _STRING,
            "trace_id": _STRING,
            "correlation_id": _STRING,
        },
    },
    "Problem": {
        "description": "The sidecar token API (`/sidecar/...`): an RFC 9457 problem.",
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {"type": _STRING, "title": _STRING, "status": {"type": "integer"}, "detail": _STRING},
    },
}

# -- Direct Line 3.0 ----------------------------------------------------------------------------------

_V3: dict[str, Schema] = {
    "ChannelAccount": {
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "string", "pattern": r"\S"}, "name": _STRING, "role": _STRING},
        "additionalProperties": True,
    },
    "Activity": {
        "description": "A Bot Framework v3 activity as stored and relayed: unknown fields pass untouched.",
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": _STRING,
            "id": _STRING,
            "timestamp": _STRING,
            "channelId": _STRING,
            "conversation": _OBJECT,
            "from": _OBJECT,
            "recipient": _OBJECT,
            # what a client or bot sent is kept as sent: null included
            "text": nullable("string"),
            "attachments": {"type": ["array", "null"], "items": _OBJECT},
            "channelData": nullable("object"),
        },
        "additionalProperties": True,
    },
    "ClientActivity": {
        "description": (
            "An activity a client sends: a `type`, and a sender (`from.id`) unless the token names the user"
            " (with the bot's secret, or a token naming no user, 400 without `from.id`)."
            " Channel-owned fields (id, timestamp, conversation, recipient, channelId, serviceUrl) are replaced."
        ),
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "minLength": 1, "pattern": r"\S"},
            "from": ref("ChannelAccount"),
            "locale": _STRING,
            **_SENT_CONTENT,
        },
        "additionalProperties": True,
    },
    "ActivitySet": {
        "type": "object",
        "required": ["activities"],
        "properties": {"activities": {"type": "array", "items": ref("Activity")}, "watermark": _STRING},
    },
    "Conversation": {
        "description": "A conversation's id and a token for it; `streamUrl` on start and reconnect.",
        "type": "object",
        "required": ["conversationId", "token", "expires_in"],
        "properties": {
            "conversationId": _STRING,
            "token": _STRING,
            "expires_in": {"type": "integer", "description": "seconds"},
            "streamUrl": {"type": "string", "format": "uri"},
        },
    },
    "TokenParameters": {
        "description": "Optional on every call that takes it; property names match in any letter case.",
        "type": "object",
        "properties": {
            # null is taken as absent
            "user": {
                "type": ["object", "null"],
                "properties": {
                    "id": {"type": ["string", "null"], "maxLength": 256},
                    "name": {"type": ["string", "null"], "maxLength": 256},
                },
            },
            "locale": {"type": ["string", "null"], "maxLength": 64},
            "trustedOrigins": {"type": ["array", "null"], "items": _STRING},
        },
    },
    "ResourceResponse": {"type": "object", "required": ["id"], "properties": {"id": _STRING}},
}

# -- Direct Line 1.1 ----------------------------------------------------------------------------------

_V1: dict[str, Schema] = {
    "V1Conversation": {
        "type": "object",
        "required": ["conversationId", "token", "expires_in"],
        "properties": {"conversationId": _STRING, "token": _STRING, "expires_in": {"type": "integer"}},
    },
    "V1Attachment": {
        "type": "object",
        "required": ["url"],
        "properties": {"url": {"type": "string", "minLength": 1}, "contentType": _STRING},
    },
    "V1MessageIn": {
        "description": "A message a client sends; property names match in any letter case.",
        "type": "object",
        "properties": {
            "from": _STRING,
            "text": _STRING,
            "channelData": _OBJECT,
            "images": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "attachments": {"type": "array", "items": ref("V1Attachment")},
        },
    },
    "V1Message": {
        "type": "object",
        "required": ["id", "conversationId", "created", "from", "text", "images", "attachments"],
        "properties": {
            "id": _STRING,
            "conversationId": _STRING,
            "created": nullable("string"),
            "from": nullable("string"),
            "text": nullable("string"),
            "channelData": _OPEN,
            "images": {"type": "array", "items": _STRING},
            "attachments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["url", "contentType"],
                    "properties": {"url": _STRING, "contentType": _STRING},
                },
            },
        },
    },
    "V1MessageSet": {
        "type": "object",
        "required": ["messages", "watermark"],
        "properties": {"messages": {"type": "array", "items": ref("V1Message")}, "watermark": _STRING},
    },
    "V1Token": {"description": "The token, as a JSON string.", "type": "string"},
}

# -- the Bot Connector API ----------------------------------------------------------------------------

_CONNECTOR: dict[str, Schema] = {
    "BotActivity": {
        "description": "An activity a bot sends; `from` becomes the conversation's bot whatever it says.",
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "minLength": 1},
            **_SENT_CONTENT,
        },
        "additionalProperties": True,
    },
    "ConversationParameters": {
        "description": (
            "`bot.id` names the bot the conversation is for: required (400 without it) when several bots are"
            " configured and the caller has no token naming one."
        ),
        "type": "object",
        "properties": {
            "bot": ref("ChannelAccount"),
            "members": {"type": "array", "items": ref("ChannelAccount")},
            "activity": ref("BotActivity"),
            "isGroup": {"type": "boolean"},
            "topicName": _STRING,
            "tenantId": _STRING,
            "channelData": _OBJECT,
        },
    },
    "ConversationResourceResponse": {
        "type": "object",
        "required": ["id", "serviceUrl"],
        "properties": {"id": _STRING, "serviceUrl": _STRING, "activityId": _STRING},
    },
    "ConversationsResult": {
        "type": "object",
        "required": ["conversations", "continuationToken"],
        "properties": {
            "conversations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "members"],
                    "properties": {"id": _STRING, "members": {"type": "array", "items": ref("ChannelAccount")}},
                },
            },
            "continuationToken": nullable("string"),
        },
    },
    "PagedMembersResult": {
        "type": "object",
        "required": ["members", "continuationToken"],
        "properties": {
            "members": {"type": "array", "items": ref("ChannelAccount")},
            "continuationToken": nullable("string"),
        },
    },
    "Transcript": {
        "type": "object",
        "required": ["activities"],
        "properties": {"activities": {"type": "array", "items": ref("BotActivity")}},
    },
    "AttachmentData": {
        "type": "object",
        "required": ["originalBase64"],
        "properties": {
            "type": _STRING,
            "name": _STRING,
            "originalBase64": {"type": "string", "contentEncoding": "base64"},
            "thumbnailBase64": {"type": "string", "contentEncoding": "base64"},
        },
    },
    "AttachmentInfo": {
        "type": "object",
        "required": ["name", "type", "views"],
        "properties": {
            "name": _STRING,
            "type": _STRING,
            "views": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["viewId", "size"],
                    "properties": {"viewId": _STRING, "size": {"type": "integer"}},
                },
            },
        },
    },
}

# -- the admin API, bot authentication, the service itself ---------------------------------------------

_DELIVERY: Schema = {
    "type": ["object", "null"],
    "required": ["state", "attempts", "status", "durationMs", "error", "detail", "at"],
    "properties": {
        "state": {"enum": ["pending", "delivered", "failed"]},
        "attempts": {"type": "integer"},
        "status": nullable("integer"),
        "durationMs": {"type": "number"},
        "error": nullable("string"),
        "detail": nullable("string"),
        "at": _STRING,
    },
}

_OTHER: dict[str, Schema] = {
    "BotSummary": {
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": _STRING, "name": nullable("string"), "endpoint": _STRING},
    },
    "AdminStatus": {
        "type": "object",
        "required": ["service", "version", "bots"],
        "properties": {"service": _STRING, "version": _STRING, "bots": {"type": "array", "items": ref("BotSummary")}},
    },
    "ConversationSummary": {
        "type": "object",
        "required": ["id", "bot", "users", "activityCount", "createdAt", "lastActivityAt"],
        "properties": {
            "id": _STRING,
            "bot": ref("BotSummary"),
            "users": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": _STRING, "name": nullable("string")},
                },
            },
            "activityCount": {"type": "integer"},
            "createdAt": _STRING,
            "lastActivityAt": _STRING,
        },
    },
    "AdminConversations": {
        "type": "object",
        "required": ["conversations"],
        "properties": {"conversations": {"type": "array", "items": ref("ConversationSummary")}},
    },
    "TranscriptEntry": {
        "type": "object",
        "required": ["id", "seq", "direction", "stored", "type", "timestamp", "activity", "delivery"],
        "properties": {
            "id": nullable("string"),
            "seq": nullable("integer"),
            "direction": {"enum": ["toBot", "toClient"]},
            "stored": {"type": "boolean"},
            "type": nullable("string"),
            "timestamp": nullable("string"),
            "activity": ref("Activity"),
            "delivery": _DELIVERY,
        },
    },
    "AdminConversation": {
        "type": "object",
        "required": ["conversation", "entries", "truncated"],
        "properties": {
            "conversation": ref("ConversationSummary"),
            "entries": {"type": "array", "items": ref("TranscriptEntry")},
            "truncated": {"type": "boolean"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "description": "`ok`; `unavailable` (the store, with the `reason`); `stopping` (SIGTERM: no new clients).",
        "properties": {"status": {"enum": ["ok", "unavailable", "stopping"]}, "reason": _STRING},
    },
    "ServiceIndex": {
        "type": "object",
        "required": ["service", "version", "directline", "bots"],
        "properties": {
            "service": _STRING,
            "version": _STRING,
            "directline": {"type": "object", "additionalProperties": _STRING},
            "bots": {"type": "array", "items": ref("BotSummary")},
        },
    },
    "WebToken": {
        "type": "object",
        "required": ["conversationId", "token", "expires_in", "user", "bot"],
        "properties": {
            "conversationId": _STRING,
            "token": _STRING,
            "expires_in": {"type": "integer"},
            "user": ref("ChannelAccount"),
            "bot": ref("BotSummary"),
        },
    },
    "OpenIdMetadata": {
        "type": "object",
        "required": ["issuer", "jwks_uri", "token_endpoint"],
        "properties": {"issuer": _STRING, "jwks_uri": _STRING, "token_endpoint": _STRING},
        "additionalProperties": True,
    },
    "Jwks": {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "kid"],
                    "properties": {
                        "kty": _STRING,
                        "kid": _STRING,
                        "endorsements": {"type": "array", "items": _STRING},
                    },
                    "additionalProperties": True,
                },
            }
        },
    },
    "TokenRequest": {
        "description": "OAuth2 client credentials (RFC 6749 §4.4); the client may authenticate by HTTP Basic instead.",
        "type": "object",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"const": "client_credentials"},
            "client_id": _STRING,
            "client_secret": _STRING,
            "scope": {"type": "string", "examples": ["https://api.botframework.com/.default"]},
        },
    },
    "AccessToken": {
        "type": "object",
        "required": ["token_type", "expires_in", "access_token"],
        "properties": {
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
            "ext_expires_in": {"type": "integer"},
            "access_token": _STRING,
        },
    },
    "SidecarAnswer": {
        "type": "object",
        "required": ["authorizationHeader"],
        "properties": {"authorizationHeader": _STRING},
    },
}

SCHEMAS: dict[str, Schema] = {**_ERRORS, **_V3, **_V1, **_CONNECTOR, **_OTHER}
