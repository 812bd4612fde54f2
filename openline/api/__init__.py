"""The HTTP surface: the Direct Line APIs for clients, the connector API for bots, file downloads."""
