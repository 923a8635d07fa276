"""Bearer JWT authentication: the user is the token's `sub`.

HS256 with a shared secret (the default, and what `./task token` signs), or
asymmetric keys from a JWKS URL such as Better Auth's /api/auth/jwks.
"""

from __future__ import annotations

import hmac
import re
from functools import lru_cache
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from todos.core import logs
from todos.core.errors import DomainError
from todos.core.fields import USER_ID_MAX_LENGTH
from todos.core.settings import Settings
from todos.core.users import User

ASYMMETRIC = ["RS256", "ES256", "EdDSA", "PS256"]

# RFC 5321 caps a path at 256 octets, angle brackets included.
EMAIL_MAX_OCTETS = 254
# Controls and unpaired surrogates: no text column takes NUL or a surrogate,
# and none belongs in a user id. An address takes no whitespace either: CR/LF
# in it would start a header of the reminder email or a command to the server.
_NOT_IN_A_USER_ID = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_IN_AN_ADDRESS = re.compile("[\\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class Unauthorized(DomainError):
    status = 401
    code = "UNAUTHORIZED"


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=600)


def decode_token(token: str, settings: Settings) -> dict[str, Any]:
    options = {"require": ["sub", "exp"]}
    common: dict[str, Any] = {"audience": settings.jwt_audience, "issuer": settings.jwt_issuer}
    if settings.jwt_audience is None:
        options["verify_aud"] = False  # type: ignore[assignment]
    try:
        if settings.jwks_url:
            key = _jwks_client(settings.jwks_url).get_signing_key_from_jwt(token).key
            return jwt.decode(token, key, algorithms=ASYMMETRIC, options=options, **common)  # type: ignore[arg-type]
        assert settings.jwt_secret is not None
        return jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            options=options,  # type: ignore[arg-type]
            **common,
        )
    except jwt.ExpiredSignatureError as error:
        raise Unauthorized("The bearer token has expired; sign in again.") from error
    except (jwt.InvalidTokenError, jwt.PyJWKClientError) as error:
        raise Unauthorized(f"The bearer token is not valid: {error}.") from error


def user_from_authorization(header: str | None, settings: Settings) -> User:
    if not header or not header.lower().startswith("bearer "):
        raise Unauthorized("Send `Authorization: Bearer <JWT>`; the token's `sub` is the user.")
    claims = decode_token(header[7:].strip(), settings)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("The bearer token has no `sub` claim naming the user.")
    if len(subject) > USER_ID_MAX_LENGTH:
        raise Unauthorized(
            f"The bearer token's `sub` is {len(subject)} characters long; "
            f"a user id may have at most {USER_ID_MAX_LENGTH}."
        )
    if _NOT_IN_A_USER_ID.search(subject):
        raise Unauthorized("The bearer token's `sub` holds control characters, which a user id may not.")
    email = claims.get("email")
    if isinstance(email, str):
        _check_address(email)
    # OIDC's `zoneinfo` claim: the user's IANA time zone, for reminder emails
    # (an unknown name falls back to the default when the email is written).
    zone = claims.get("zoneinfo")
    return User(
        id=subject,
        email=email if isinstance(email, str) else None,
        timezone=zone if isinstance(zone, str) else None,
    )


def _check_address(email: str) -> None:
    """Refuse an `email` claim no reminder could be sent to, at the door:
    stored, it would fail every reminder of every task the token creates."""
    if _NOT_IN_AN_ADDRESS.search(email):
        raise Unauthorized(
            "The bearer token's `email` claim holds spaces, line breaks or control characters; "
            "it is not an address reminders can be sent to."
        )
    octets = len(email.encode())
    if octets > EMAIL_MAX_OCTETS:
        raise Unauthorized(
            f"The bearer token's `email` claim is {octets} bytes long; "
            f"an address has at most {EMAIL_MAX_OCTETS} (RFC 5321)."
        )


_bearer = HTTPBearer(auto_error=False, description="A JWT whose `sub` is the user.")


def current_user(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    user = user_from_authorization(request.headers.get("authorization"), request.app.state.settings)
    logs.annotate(user_id=user.id)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def issue_token(
    user_id: str,
    settings: Settings,
    *,
    email: str | None = None,
    zoneinfo: str | None = None,
    ttl_seconds: int = 12 * 3600,
) -> str:
    """A dev token signed with the HS256 secret (`./task token -- alice`)."""
    import time

    if settings.jwt_secret is None:
        raise SystemExit("TODO_JWT_SECRET is not set; cannot sign a token.")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    claims["email"] = email or f"{user_id}@example.com"
    if zoneinfo:
        claims["zoneinfo"] = zoneinfo
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def require_dapr(request: Request) -> None:
    """Only daprd may call: it presents the app API token (the sidecar's
    APP_API_TOKEN) in `dapr-api-token`."""
    token = request.app.state.settings.app_api_token
    expected = token.get_secret_value().encode() if token else b""
    # Bytes: compare_digest raises on a str with non-ASCII characters. The
    # header is the raw bytes Starlette decoded as Latin-1; the token is the
    # UTF-8 text of the Secret, which daprd sends as it is.
    presented = request.headers.get("dapr-api-token", "").encode("latin-1")
    if expected and not hmac.compare_digest(presented, expected):
        raise Unauthorized(
            "Only the Dapr sidecar may call this endpoint: `dapr-api-token` is missing or wrong."
        )


DaprCaller = Depends(require_dapr)
