"""The number a follow-up item keeps to call the customer back, under the privacy policy.

`full`: the number as received, in the clear (the policy allows it). `mask` and `hash`: the
item shows the masked number (`mask`) or nothing (`hash`), and keeps the number sealed with
the controller's contact key (`ivr.records.keys.contact_key`); `ivr followups contact`
opens it for one item and records who asked and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from ivr.records.masking import Policy, mask_caller


class SealError(Exception):
    """A sealed contact that this key cannot open (another controller's key, or altered)."""


@dataclass(frozen=True)
class Contact:
    shown: str | None  # what lists and exports show
    sealed: str | None  # the number, sealed; None under `full` (shown is the number)


class ContactSeal:
    def __init__(self, policy: Policy, key: bytes) -> None:
        self.policy = policy
        self._fernet = Fernet(key)

    def shown(self, number: str | None) -> str | None:
        """What lists and exports show of `number` (no encryption: cheap for every survey)."""
        if not number or self.policy == "full":
            return number or None
        return mask_caller(number, "mask") if self.policy == "mask" else None

    def seal(self, number: str | None) -> Contact:
        if not number:
            return Contact(None, None)
        sealed = None if self.policy == "full" else self._fernet.encrypt(number.encode()).decode()
        return Contact(self.shown(number), sealed)

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SealError("the contact was sealed with another key (var/contact.key of another controller?) "
                            "or altered") from None
