"""The SSO session: one per browser, server-side in the ephemeral store."""
