"""Credentials: Direct Line secrets and conversation tokens, and signed file URLs."""
