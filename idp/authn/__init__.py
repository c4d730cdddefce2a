"""Authentication: how a person proves who they are. Never imports the protocol (``idp.oidc``)."""
