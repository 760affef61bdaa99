"""How fhirflow signs in to Snowflake: password, key pair, programmatic access token, OAuth
token or another `authenticator`, resolved once from Settings for both the loader (the
connector's own options) and dbt (the environment dbt/profiles.yml reads).

Snowflake is blocking single-factor password sign-ins for service users, so a key pair
(SNOWFLAKE_PRIVATE_KEY_PATH, with SNOWFLAKE_PRIVATE_KEY_PASSPHRASE when the key is encrypted)
or a programmatic access token (SNOWFLAKE_TOKEN) is what a deployment should use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirflow.errors import ConfigError

if TYPE_CHECKING:
    from fhirflow.config import Settings

# SNOWFLAKE_AUTHENTICATOR values (case-insensitive) and the credential each one needs. The
# names are snowflake-connector-python's; dbt-snowflake passes them to it unchanged.
PASSWORD = "snowflake"
KEY_PAIR = "snowflake_jwt"
TOKEN = "programmatic_access_token"
NEEDS: dict[str, str | None] = {
    PASSWORD: "password",
    "username_password_mfa": "password",
    KEY_PAIR: "key",
    TOKEN: "token",
    "oauth": "token",
    "externalbrowser": None,  # interactive: a person at a browser, never a service user
}
_VARIABLE = {"password": "SNOWFLAKE_PASSWORD", "key": "SNOWFLAKE_PRIVATE_KEY_PATH",
             "token": "SNOWFLAKE_TOKEN"}


@dataclass(frozen=True)
class SnowflakeAuth:
    """One sign-in method with its secrets. `describe()` is safe to print; nothing else is."""

    authenticator: str
    password: str | None = None
    private_key_path: Path | None = None
    private_key_passphrase: str | None = None
    token: str | None = None

    def connector_kwargs(self) -> dict[str, Any]:
        """snowflake.connector.connect() arguments for this method (secrets included)."""
        kwargs: dict[str, Any] = {"authenticator": self.authenticator.upper()}
        if self.authenticator.startswith("https://"):
            kwargs["authenticator"] = self.authenticator  # native Okta: the URL as given
        if self.password is not None:
            kwargs["password"] = self.password
        if self.private_key_path is not None:
            kwargs["private_key_file"] = str(self.private_key_path)
            if self.private_key_passphrase:
                kwargs["private_key_file_pwd"] = self.private_key_passphrase
        if self.token is not None:
            kwargs["token"] = self.token
        return kwargs

    def dbt_environment(self) -> dict[str, str]:
        """The variables dbt/profiles.yml reads for the same method (secrets included). The
        other methods' variables are emptied, so a credential left in the shell is not sent
        beside the chosen one."""
        return {
            "SNOWFLAKE_AUTHENTICATOR": self.authenticator,
            "SNOWFLAKE_PASSWORD": self.password or "",
            "SNOWFLAKE_PRIVATE_KEY_PATH": str(self.private_key_path or ""),
            "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": self.private_key_passphrase or "",
            "SNOWFLAKE_TOKEN": self.token or "",
        }

    def describe(self) -> str:
        """The method in words, without any secret: for `fhirflow doctor` and errors."""
        if self.private_key_path is not None:
            encrypted = ", encrypted" if self.private_key_passphrase else ""
            return f"key pair ({self.private_key_path}{encrypted})"
        if self.authenticator == TOKEN:
            return "programmatic access token"
        if self.authenticator == "oauth":
            return "OAuth token"
        if self.authenticator == PASSWORD:
            return "password"
        return f"authenticator {self.authenticator}"


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def resolve(settings: Settings) -> SnowflakeAuth:
    """The sign-in method the settings ask for, checked: one ConfigError line otherwise.

    Without SNOWFLAKE_AUTHENTICATOR the method follows from the one credential that is set.
    """
    given = {
        "password": settings.snowflake_password is not None,
        "key": settings.snowflake_private_key_path is not None,
        "token": settings.snowflake_token is not None,
    }
    chosen = settings.snowflake_authenticator
    if chosen is None:
        present = [kind for kind, is_set in given.items() if is_set]
        if len(present) > 1:
            names = " and ".join(_VARIABLE[k] for k in present)
            raise ConfigError(f"{names} are both set: keep one, or say which with "
                              "SNOWFLAKE_AUTHENTICATOR")
        if not present:
            raise ConfigError("no Snowflake credentials: set SNOWFLAKE_PRIVATE_KEY_PATH (key "
                              "pair), SNOWFLAKE_TOKEN (programmatic access token) or "
                              "SNOWFLAKE_PASSWORD")
        chosen = {"password": PASSWORD, "key": KEY_PAIR, "token": TOKEN}[present[0]]
    # Native Okta (an https:// URL) signs in with the Okta user's password.
    need = "password" if chosen.startswith("https://") else NEEDS[chosen]
    if need is not None and not given[need]:
        raise ConfigError(f"SNOWFLAKE_AUTHENTICATOR={chosen} needs {_VARIABLE[need]}")
    key_path = settings.snowflake_private_key_path if need == "key" else None
    passphrase = _secret(settings.snowflake_private_key_passphrase)
    if key_path is not None:
        check_private_key(key_path, passphrase)
    return SnowflakeAuth(
        authenticator=chosen,
        password=_secret(settings.snowflake_password) if need == "password" else None,
        private_key_path=key_path,
        private_key_passphrase=passphrase if key_path is not None else None,
        token=_secret(settings.snowflake_token) if need == "token" else None,
    )


def check_private_key(path: Path, passphrase: str | None) -> None:
    """Load the PEM key as the connector will, so a wrong path or passphrase is one line here
    rather than a traceback from inside the connector."""
    from cryptography.hazmat.primitives import serialization

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"SNOWFLAKE_PRIVATE_KEY_PATH: cannot read {path}: "
                          f"{exc.strerror or exc}") from None
    try:
        serialization.load_pem_private_key(
            data, password=passphrase.encode() if passphrase else None)
    except TypeError:
        # cryptography: a passphrase for a plain key, or none for an encrypted one.
        need = ("is not encrypted: unset SNOWFLAKE_PRIVATE_KEY_PASSPHRASE" if passphrase
                else "is encrypted: set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE")
        raise ConfigError(f"SNOWFLAKE_PRIVATE_KEY_PATH: the key in {path} {need}") from None
    except ValueError:
        raise ConfigError(
            f"SNOWFLAKE_PRIVATE_KEY_PATH: {path} is not a PEM private key, or "
            "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE is wrong") from None


def profile_environment(settings: Settings) -> dict[str, str]:
    """Everything the Snowflake targets of dbt/profiles.yml (and generate_schema_name) read,
    from Settings: the connection, the sign-in method's variables, the RAW schema, the query
    tag and the layers' schema prefix."""
    env = {
        "SNOWFLAKE_ACCOUNT": settings.snowflake_account or "",
        "SNOWFLAKE_USER": settings.snowflake_user or "",
        "SNOWFLAKE_DATABASE": settings.snowflake_database,
        "SNOWFLAKE_WAREHOUSE": settings.snowflake_warehouse,
        "SNOWFLAKE_ROLE": settings.snowflake_role,
        "SNOWFLAKE_SCHEMA": settings.snowflake_schema,
        "SNOWFLAKE_QUERY_TAG": settings.snowflake_query_tag,
        "FHIRFLOW_DBT_SCHEMA_PREFIX": settings.dbt_schema_prefix,
        **resolve(settings).dbt_environment(),
    }
    optional = {
        "SNOWFLAKE_HOST": settings.snowflake_host,
        "SNOWFLAKE_PORT": str(settings.snowflake_port) if settings.snowflake_port else None,
        "SNOWFLAKE_PROTOCOL": settings.snowflake_protocol,
    }
    env.update({k: v for k, v in optional.items() if v})
    return env
