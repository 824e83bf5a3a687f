"""Access control: who sends a request (a Principal with a role), and the keyring that resolves
API keys kept in the store without a database round trip per request."""
