"""OAuth2 as a client: the tenant's registered clients, Connect (authorization code with PKCE), token renewal."""
