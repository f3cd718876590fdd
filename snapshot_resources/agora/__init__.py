"""The wire to Agora: request bodies (``wire``), the REST client (``client``) and its errors
(``errors``).  Nothing here knows about Pulumi."""
