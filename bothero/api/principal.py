from dataclasses import dataclass


@dataclass
class Principal:
    """Who is calling: always a tenant, through an API key or an access token (maybe a user's)."""

    tenant: object
    api_key: object = None
    user: object = None
    access_token: object = None
    # A publishable key's visitor (`bothero.api.publishable.Visitor`), once the key's policy has run.
    visitor: object = None

    is_authenticated = True
    is_anonymous = False
    is_active = True

    @property
    def pk(self):
        return None

    @property
    def signing_key(self):
        """The API key whose signing secret this request must be signed with, if any.

        Tokens exchanged for a key that requires signatures require them too:
        otherwise exchanging a leaked key at /v1/auth/token would bypass signing.
        """
        key = self.api_key
        if key is None and self.access_token is not None:
            key = self.access_token.family.api_key
        return key if key is not None and key.require_signature else None
