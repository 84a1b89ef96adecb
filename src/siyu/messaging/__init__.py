"""Messaging: templates, the outbox, channel adapters (WeCom, SMS, email, webhook), caps and consent."""
