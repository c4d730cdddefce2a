"""Accounts: people (citizens, residents, visitors), staff, and later organisations."""
