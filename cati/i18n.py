"""Translations without Flask: gettext message catalogues, zh-CN first and en selectable.

The texts live in Babel message catalogues, one ``.po`` file per language and domain::

    cati/translations/zh_Hans_CN/LC_MESSAGES/messages.po    the web screens and the services' messages
    cati/translations/en/LC_MESSAGES/messages.po
    reports/translations/<locale>/LC_MESSAGES/reports.po    the reports (a domain of their own, see reports.i18n)

The message ids are stable keys (``login``, ``user_exists``), not English source text: the first language is
Chinese, and a key survives rewording in both languages. ``babel.cfg`` and ``babel-reports.cfg`` map the sources
for ``pybabel extract``; docs/i18n.md has the workflow. Messages take ``str.format`` fields (``{n}``); both
languages of a message take the same fields (tests/app/test_translations.py checks it).

The ``.po`` files are the only committed form. They are read with :mod:`babel.messages.pofile` on first use and
compiled in memory (:func:`babel.messages.mofile.write_mo`) once per process, so a fresh clone, an editable
install and a wheel all work without a build step, and no stale ``.mo`` can shadow an edited ``.po``.
``pybabel compile -d cati/translations`` still works for anyone who wants ``.mo`` files.

Services raise :class:`KeyedError` (or carry a ``key`` and ``params`` like
:class:`cati.study.loader.Problem`); ``str(err)`` is the English text for logs and the CLI, and
:func:`render` gives the text in any language.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = ["LANGUAGES", "LANGUAGE_NAMES", "LOCALES", "DEFAULT_LANGUAGE", "DOMAIN", "TRANSLATIONS_DIR",
           "MissingTranslation", "KeyedError", "KeyedText", "catalogue", "messages", "translations", "lookup", "gettext", "has_key",
           "render", "locale_for", "language_for"]

LANGUAGES = ("zh-CN", "en")
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh-CN"
#: UI language tag → Babel locale identifier (the catalogue directory name).
LOCALES = {"zh-CN": "zh_Hans_CN", "en": "en"}
DOMAIN = "messages"
TRANSLATIONS_DIR = Path(__file__).with_name("translations")


class MissingTranslation(KeyError):
    """A key the catalogue does not hold (a programming error: add it to both ``.po`` files)."""


def language_for(lang: Any) -> str:
    """The UI language for a language tag or Babel locale (``zh``, ``zh_CN``, ``zh_Hans_CN`` → ``zh-CN``)."""
    s = str(lang or "").replace("_", "-").lower()
    if s.startswith("zh"):
        return "zh-CN"
    if s.startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE


def locale_for(lang: str | None) -> str:
    """The Babel locale identifier of a UI language (``zh-CN`` → ``zh_Hans_CN``)."""
    return LOCALES[language_for(lang)]


def _po_path(lang: str, directory: Path, domain: str) -> Path:
    return Path(directory) / locale_for(lang) / "LC_MESSAGES" / f"{domain}.po"


@functools.cache
def catalogue(lang: str, directory: Path = TRANSLATIONS_DIR, domain: str = DOMAIN) -> Catalog:
    """The parsed ``.po`` catalogue of ``lang`` (cached for the process)."""
    path = _po_path(lang, directory, domain)
    with open(path, "rb") as fh:
        return read_po(fh, locale=locale_for(lang), domain=domain)


@functools.cache
def messages(lang: str, directory: Path = TRANSLATIONS_DIR, domain: str = DOMAIN) -> dict[str, str]:
    """Key → text of every translated (non-empty, non-fuzzy) message of ``lang``."""
    return {m.id: m.string for m in catalogue(lang, directory, domain)
            if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


@functools.cache
def translations(lang: str, directory: Path = TRANSLATIONS_DIR, domain: str = DOMAIN) -> Translations:
    """A gettext :class:`~babel.support.Translations` for ``lang``, compiled in memory from the ``.po`` file."""
    buf = io.BytesIO()
    write_mo(buf, catalogue(lang, directory, domain), use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=domain)


def has_key(key: str, directory: Path = TRANSLATIONS_DIR, domain: str = DOMAIN) -> bool:
    """Whether ``key`` is in the catalogue (of the first language, which every key must have)."""
    return key in messages(DEFAULT_LANGUAGE, directory, domain)


def lookup(key: str, lang: str | None, fields: Mapping[str, Any] | None = None, *, strict: bool = False,
           directory: Path = TRANSLATIONS_DIR, domain: str = DOMAIN) -> str:
    """The text of ``key`` in ``lang`` with ``fields`` filled in (``str.format``).

    A key missing from the catalogue raises :class:`MissingTranslation` when ``strict``, else comes back as the
    key itself, so a gap is visible, never silent. A message missing only in ``lang`` falls back to zh-CN.
    """
    lang = language_for(lang)
    text = messages(lang, directory, domain).get(key) or messages(DEFAULT_LANGUAGE, directory, domain).get(key)
    if text is None:
        if strict:
            raise MissingTranslation(f"i18n: no message {key!r} in the {domain!r} catalogue")
        return key
    if not fields:
        return text
    return text.format(**{k: _field(v, lang) for k, v in fields.items()})


def gettext(key: str, lang: str | None = None, /, **fields: Any) -> str:
    """The text of ``key`` in ``lang`` (default zh-CN) with ``fields`` filled in; see :func:`lookup`.

    >>> gettext("login", "en"), gettext("login", "zh-CN")
    ('Sign in', '登录')
    >>> gettext("user_exists", "en", username="li")
    "user 'li' already exists"
    """
    return lookup(key, lang, fields)


def _field(value: Any, lang: str) -> Any:
    """A field value as shown: keyed objects in ``lang``; lists of them joined."""
    if getattr(value, "key", None) and hasattr(value, "params"):
        return render(value, lang)
    if isinstance(value, list | tuple) and any(getattr(v, "key", None) for v in value):
        return "; ".join(render(v, lang) for v in value)
    return value


def render(obj: Any, lang: str | None = None) -> str:
    """A message object in ``lang``: through its own ``message(lang)`` when it has one (keyed errors, and errors
    such as the engine's ``AnswerError`` whose fields need rendering first), else a keyed problem or text through
    the catalogue, else ``str(obj)``.

    >>> render(KeyedError("user_exists", username="li"), "zh-CN")
    '用户 li 已存在'
    """
    message = getattr(obj, "message", None)
    if callable(message):
        return str(message(language_for(lang)))
    key = getattr(obj, "key", None)
    if isinstance(key, str) and key:
        return lookup(key, lang, getattr(obj, "params", None) or {})
    if isinstance(message, str):  # an unkeyed Problem: its English text
        return message
    return str(obj)


class KeyedError(ValueError):
    """An error that says what went wrong as a catalogue ``key`` and ``params``, not as finished text.

    ``str(err)`` is the English text (logs, CLI); ``err.message(lang)`` the text in ``lang``.
    """

    def __init__(self, key: str, /, **params: Any):
        self.key = key
        self.params: Mapping[str, Any] = params
        super().__init__(lookup(key, "en", params))

    def message(self, lang: str | None = DEFAULT_LANGUAGE) -> str:
        return lookup(self.key, lang, self.params)


class KeyedText(str):
    """The English text of a catalogue message that remembers its ``key`` and ``params``.

    It is a ``str``, so code that passes messages along (a :class:`~cati.study.loader.Problem`'s ``message``, a
    ``Problem`` copied under another file name) keeps working, and the key survives for :func:`render`.

    >>> m = KeyedText("user_exists", username="li")
    >>> m, render(m, "zh-CN")
    ("user 'li' already exists", '用户 li 已存在')
    """

    key: str
    params: Mapping[str, Any]

    def __new__(cls, key: str, /, **params: Any) -> KeyedText:
        self = super().__new__(cls, lookup(key, "en", params))
        self.key = key
        self.params = params
        return self

    def message(self, lang: str | None = DEFAULT_LANGUAGE) -> str:
        return lookup(self.key, lang, self.params)

    @classmethod
    def bilingual(cls, key: str, /, **params: Any) -> KeyedText:
        """A keyed text whose own string is "中文 / English", for files both kinds of reader open (an import's
        reject file); :func:`render` still gives one language.

        >>> KeyedText.bilingual("phone_too_short")
        '号码过短 / too short'
        """
        self = str.__new__(cls, f"{lookup(key, 'zh-CN', params)} / {lookup(key, 'en', params)}")
        self.key = key
        self.params = params
        return self
