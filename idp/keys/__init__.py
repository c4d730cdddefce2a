"""Keys: the master key's sealing, the signing-key store, and the Signer (the only place a
signature is made)."""
