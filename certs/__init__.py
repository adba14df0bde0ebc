"""Certificate tooling: a private CA, serving and client certificates (see certs.issue)."""
