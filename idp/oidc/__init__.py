"""The OpenID Connect protocol: Authlib's server framework, wired to Hawiya's services."""
