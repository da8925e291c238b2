"""ansible-vault secrets, the Ansible way: `--vault-id` / `--vault-password-file`, oaops.yml
`settings.vault_password_file` / `settings.vault_ids` (a file or client script, never the
password), and Ansible's own `ANSIBLE_VAULT_PASSWORD_FILE` / `ANSIBLE_VAULT_IDENTITY_LIST` /
ansible.cfg. All are tried, as ansible-playbook tries them; the same inventories work in both.

The site's vault ids are set once per process when its config is opened (`use`), so every
inventory read and every run of that process decrypts with them; the secrets are read once
(a client script runs once, not once per inventory read).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from oaops.config_estate import VAULT_FIX, VaultId
from oaops.errors import InputError

if TYPE_CHECKING:
    from ansible.parsing.dataloader import DataLoader

VAULT_HEADER = b"$ANSIBLE_VAULT"
FIX = VAULT_FIX


_site: tuple[VaultId, ...] = ()
_loaded: dict[tuple[VaultId, ...], list[tuple[str, Any]]] = {}


def use(ids: tuple[VaultId, ...]) -> None:
    """The vault ids of the site this process works for (called when its config is opened)."""
    global _site
    _site = tuple(ids)


def site_ids() -> tuple[VaultId, ...]:
    return _site


def _ansible_ids() -> list[VaultId]:
    """What Ansible itself reads from ANSIBLE_VAULT_* and ansible.cfg, read now (not at import)."""
    from ansible import constants as C

    out: list[VaultId] = []
    for slug in C.config.get_config_value("DEFAULT_VAULT_IDENTITY_LIST") or []:
        out.append(VaultId(str(slug), "ANSIBLE_VAULT_IDENTITY_LIST (or ansible.cfg vault_identity_list)"))
    password_file = C.config.get_config_value("DEFAULT_VAULT_PASSWORD_FILE")
    if password_file:
        out.append(VaultId(str(password_file), "ANSIBLE_VAULT_PASSWORD_FILE (or ansible.cfg vault_password_file)"))
    return out


def all_ids(ids: tuple[VaultId, ...] | None = None) -> list[VaultId]:
    seen: set[str] = set()
    out: list[VaultId] = []
    for vid in [*(_site if ids is None else ids), *_ansible_ids()]:
        if vid.slug not in seen:
            seen.add(vid.slug)
            out.append(vid)
    return out


def split(slug: str) -> tuple[str | None, str]:
    label, at, source = slug.partition("@")
    return (label, source) if at else (None, slug)


def secrets(loader: DataLoader, ids: tuple[VaultId, ...] | None = None) -> list[tuple[str, Any]]:
    """Load the secrets once per set of ids; a missing or failing file is bad input (exit 2)."""
    chosen = tuple(all_ids(ids))
    if chosen in _loaded:
        return _loaded[chosen]
    from ansible import constants as C
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import get_file_vault_secret

    out: list[tuple[str, Any]] = []
    for vid in chosen:
        label, source = split(vid.slug)
        label = label or C.DEFAULT_VAULT_IDENTITY
        if source in ("prompt", "prompt_ask_vault_pass"):
            raise InputError(
                vid.where, f"{vid.slug!r} asks for a typed password; oaops runs unattended (cron, schedules)",
                "name a password file or a client script instead",
            )  # fmt: skip
        if not Path(source).exists():
            raise InputError(vid.where, f"vault password file {source} does not exist", FIX)
        try:
            secret = get_file_vault_secret(filename=source, vault_id=label, loader=loader)
            secret.load()
        except AnsibleError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(vid.where, f"vault password from {source} cannot be read: {first}", FIX) from None
        out.append((label, secret))
    _loaded[chosen] = out
    return out


def check_inline(values: dict[str, Any], loader: DataLoader) -> None:
    """Inline `!vault` values decrypt only when templated: try them now, so a wrong password is
    refused before a run is recorded rather than failing inside it."""
    from ansible.parsing.vault import EncryptedString, VaultLib

    inline = [v for v in values.values() if isinstance(v, EncryptedString)]
    if inline:
        lib = VaultLib(secrets(loader))
        for value in inline:
            lib.decrypt(getattr(value, "_ciphertext"))  # noqa: B009 (Ansible keeps it private)


def cmdline(ids: tuple[VaultId, ...] | None = None) -> list[str]:
    """ansible-playbook arguments for the site's vault ids (Ansible adds its own config itself)."""
    args: list[str] = []
    for vid in _site if ids is None else ids:
        args += ["--vault-id", vid.slug]
    return args


def encrypted_files(inventory: Path) -> list[Path]:
    """The ansible-vault files of an inventory, to name them when none can be decrypted."""
    folder = inventory if inventory.is_dir() else inventory.parent
    candidates = [p for p in sorted(folder.iterdir()) if p.is_file()] if folder.is_dir() else []
    for sub in ("group_vars", "host_vars"):
        candidates += sorted(p for p in (folder / sub).rglob("*") if p.is_file())
    found: list[Path] = []
    for path in candidates:
        try:
            with open(path, "rb") as fh:
                if fh.read(len(VAULT_HEADER)) == VAULT_HEADER:
                    found.append(path)
        except OSError:
            continue
    return found


def decrypt_error(inventory: Path, message: str, ids: tuple[VaultId, ...] | None = None) -> InputError:
    """One line for a vault the given passwords do not open (exit 2, before anything is written)."""
    files = encrypted_files(inventory)
    what = str(files[0]) if len(files) == 1 else f"{files[0]} and {len(files) - 1} more" if files else str(inventory)
    tried = all_ids(ids)
    if not tried:
        return InputError("vault password", f"none is given, but {what} is encrypted with ansible-vault", FIX)
    where = ", ".join(sorted({v.where for v in tried}))
    return InputError(where, f"the vault password does not decrypt {what} ({message.rstrip('.')})", FIX)


def is_vault_error(exc: BaseException) -> bool:
    from ansible.parsing.vault import AnsibleVaultError

    seen = exc
    for _ in range(5):
        if isinstance(seen, AnsibleVaultError):
            return True
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            return False
        seen = nxt
    return False
