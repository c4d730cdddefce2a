"""HTTP edge: error mapping, security headers, cookies, request context, health."""
