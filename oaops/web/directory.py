"""The password step against an LDAP directory (`settings.web.ldap`, ldap3): a bind as the user.

The bind is the whole check: the directory says whether the password is right, the console never
sees a hash. Over TLS only (ldaps://, or StartTLS on ldap://; config_estate refuses a clear
connection to another machine), the certificate verified against `ca_file` or the system's CAs.
A directory that cannot be reached is not a wrong password: it is said so, and not counted
towards the account's lock.
"""

from __future__ import annotations

import ssl
from typing import Any

from oaops.config_estate import LdapSettings


class DirectoryDown(Exception):
    """The directory could not be reached or refused to talk (not a wrong password)."""


def _server(settings: LdapSettings) -> Any:
    import ldap3

    tls = None
    if settings.tls:
        ca = str(settings.ca_file) if settings.ca_file else None
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca, version=ssl.PROTOCOL_TLS_CLIENT)
    return ldap3.Server(
        settings.url,
        use_ssl=settings.url.lower().startswith("ldaps://"),
        tls=tls,
        connect_timeout=settings.timeout,
        get_info=ldap3.NONE,
    )


def _open(settings: LdapSettings, server: Any, user: str | None, password: str | None) -> Any:
    import ldap3

    conn = ldap3.Connection(server, user=user, password=password, receive_timeout=settings.timeout,
                            auto_bind=ldap3.AUTO_BIND_NONE, raise_exceptions=False)  # fmt: skip
    conn.open()
    if settings.tls and not settings.url.lower().startswith("ldaps://") and not conn.start_tls():
        raise DirectoryDown(f"StartTLS refused by {settings.url}: {conn.result}")
    return conn


def _user_dn(settings: LdapSettings, server: Any, login: str) -> str | None:
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn

    if settings.user_dn:
        return settings.user_dn.format(login=escape_rdn(login))  # a login cannot add RDNs
    conn = _open(settings, server, None, None)  # an anonymous search for the user's entry
    try:
        conn.search(settings.search_base, settings.search_filter.format(login=escape_filter_chars(login)),
                    attributes=[], size_limit=2)  # fmt: skip
        found = [e.entry_dn for e in conn.entries]
    finally:
        conn.unbind()
    return found[0] if len(found) == 1 else None


def bind(settings: LdapSettings, login: str, password: str) -> bool:
    """True when the directory accepts `password` for `login`; DirectoryDown when it cannot say."""
    from ldap3.core.exceptions import LDAPException

    if not password:  # an empty password is an unauthenticated bind, which "succeeds" (RFC 4513 5.1.2)
        return False
    server = _server(settings)
    try:
        dn = _user_dn(settings, server, login)
        if dn is None:
            return False
        conn = _open(settings, server, dn, password)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()
    except LDAPException as exc:
        raise DirectoryDown(f"{settings.url}: {type(exc).__name__}: {exc}") from None
