from dataclasses import dataclass


@dataclass
class Principal:
    """Who is calling: always a tenant, through an API key or an access token (maybe a user's)."""

    tenant: object
    api_key: object = None
    user: object = None
    access_token: object = None

    is_authenticated = True
    is_anonymous = False
    is_active = True

    @property
    def pk(self):
        return None
