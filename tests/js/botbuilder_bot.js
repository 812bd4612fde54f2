// A botbuilder-js echo bot (CloudAdapter) with bot authentication against openline, run by
// tests/e2e/test_bot_auth_botbuilder_js.py.
//
// Modelled on the official sample 02.echo-bot (index.js and bot.js folded into one file), served with express
// instead of restify. Two changes from the sample, both in "Authentication" below:
// - ConfigurationBotFrameworkAuthentication reads process.env, so openline's issuer, OpenID metadata URL, login
//   URL and scope are plain environment variables (the sample's createBotFrameworkAuthenticationFromConfiguration(
//   null, ...) reads none of them);
// - the small factory: msal-node must be told that openline's host is a token authority (knownAuthorities), else
//   it asks login.microsoftonline.com about it first, and botbuilder-js has no setting for that.
//
// Environment: MicrosoftAppId, MicrosoftAppPassword, ToBotFromChannelOpenIdMetadataUrl,
// ToBotFromChannelTokenIssuer, ToChannelFromBotLoginUrl, ToChannelFromBotOAuthScope, PORT,
// and NODE_EXTRA_CA_CERTS when openline's certificate comes from a private CA.

const express = require('express');
const { ConfidentialClientApplication } = require('@azure/msal-node');
const { ActivityHandler, CloudAdapter, ConfigurationBotFrameworkAuthentication, MessageFactory } = require('botbuilder');
const { MsalServiceClientCredentialsFactory } = require('botframework-connector');

// --- Authentication ------------------------------------------------------------------------------------------

// The small factory: the bot's own tokens come from the authority in ToChannelFromBotLoginUrl (https://HOST/adfs).
const credentialsFactory = new MsalServiceClientCredentialsFactory(
    process.env.MicrosoftAppId,
    new ConfidentialClientApplication({
        auth: {
            clientId: process.env.MicrosoftAppId,
            clientSecret: process.env.MicrosoftAppPassword,
            authority: process.env.ToChannelFromBotLoginUrl,
            knownAuthorities: [new URL(process.env.ToChannelFromBotLoginUrl).host]
        }
    })
);

const botFrameworkAuthentication = new ConfigurationBotFrameworkAuthentication(process.env, credentialsFactory);

// --- The rest is the sample's --------------------------------------------------------------------------------

class EchoBot extends ActivityHandler {
    constructor() {
        super();
        this.onMessage(async (context, next) => {
            const replyText = `Echo: ${ context.activity.text }`;
            await context.sendActivity(MessageFactory.text(replyText, replyText));
            await next();
        });
        this.onMembersAdded(async (context, next) => {
            const membersAdded = context.activity.membersAdded;
            const welcomeText = 'Hello and welcome!';
            for (let cnt = 0; cnt < membersAdded.length; ++cnt) {
                if (membersAdded[cnt].id !== context.activity.recipient.id) {
                    await context.sendActivity(MessageFactory.text(welcomeText, welcomeText));
                }
            }
            await next();
        });
    }
}

const adapter = new CloudAdapter(botFrameworkAuthentication);

adapter.onTurnError = async (context, error) => {
    console.error(`\n [onTurnError] unhandled error: ${ error }`);
    await context.sendTraceActivity(
        'OnTurnError Trace',
        `${ error }`,
        'https://www.botframework.com/schemas/error',
        'TurnError'
    );
    await context.sendActivity('The bot encountered an error or bug.');
    await context.sendActivity('To continue to run this bot, please fix the bot source code.');
};

const myBot = new EchoBot();

const server = express();
server.use(express.json());
server.post('/api/messages', async (req, res) => {
    await adapter.process(req, res, (context) => myBot.run(context));
});

const port = Number(process.env.port || process.env.PORT || 3978);
server.listen(port, '127.0.0.1', () => {
    console.log(`ready: listening on http://127.0.0.1:${ port }/api/messages`);
});
