"""The rules of a conversation (`channel.Channel`) and the HTTP client that calls bots (`delivery.BotClient`)."""
