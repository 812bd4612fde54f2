#!/usr/bin/env node
// An echo agent on the Microsoft 365 Agents SDK for JS (@microsoft/agents-hosting + -express 1.8.1), shaped like
// the SDK's quickstart: an AgentApplication with an echo on message, served by startServer. It has no code for
// openline: every setting comes from the environment (tests/e2e/test_bot_auth_agents_js.py, agents-sdk.md §2.2,
// §3.2 option A), as a deployment would set them:
//
//   PORT                                                       the port startServer listens on (else 3978)
//   CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID        the bot's app id in openline (aud of channel tokens)
//   CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHORITYENDPOINT   {openline}/adfs: channel-token keys are read
//                                                              from {openline}/adfs/discovery/v2.0/keys
//   CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHTYPE        EntraAuthSideCar: the bot's own tokens come from
//   CONNECTIONS__SERVICE_CONNECTION__SETTINGS__SIDECARBASEURL  {openline}/sidecar/<the bot's sidecar secret>
//   NODE_EXTRA_CA_CERTS                                        openline's CA (it serves https)

const { AgentApplication, MemoryStorage } = require('@microsoft/agents-hosting')
const { startServer } = require('@microsoft/agents-hosting-express')

const agent = new AgentApplication({ storage: new MemoryStorage() })

agent.onActivity('message', async (context) => {
  await context.sendActivity(`echo: ${context.activity.text}`)
})

startServer(agent)
