"""The SMS channel's adapter: an HTTP POST of JSON to the configured provider URL.

The request is ``{"to": "<phone>", "text": "<fixed text>", "ref": "gb-<delivery id>"}`` with
``Content-Type: application/json`` and, when a token is configured, ``Authorization: Bearer <token>``; any
2xx answer means accepted. A provider (or the operator's own gateway in front of one) adapts this to its own
API. The text never carries the content of a tip, a place or an amount; the phone number is read from the
user when sending and is never logged or stored with the delivery. ``ref`` is stable across retries, so a
provider that de-duplicates by it sends once.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request


class DeliveryFailed(Exception):
    """The provider did not accept the message: ``code`` is short and holds no personal data."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class SmsChannel:
    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the SMS provider URL is http(s)://...")
        self.url, self.token, self.timeout_s = url, token, timeout_s

    def send(self, *, to: str, text: str, ref: str) -> None:
        body = json.dumps({"to": to, "text": text, "ref": ref}, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                if not 200 <= resp.status < 300:
                    raise DeliveryFailed(f"http_{resp.status}")
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(f"http_{exc.code}") from None
        except TimeoutError:
            raise DeliveryFailed("timeout") from None
        except (urllib.error.URLError, OSError):
            raise DeliveryFailed("unreachable") from None
