"""Translations for the web screens: the gettext catalogues of :mod:`cati.i18n`, zh-CN first, en selectable.

Templates call ``t("login")`` (or ``t("released_n", n=3)`` with ``str.format`` fields); views call
``t``/``translate`` the same way. The texts are in ``cati/translations/<locale>/LC_MESSAGES/messages.po``. A key missing from the catalogue
is a programming error: in testing it raises, in production it shows the key, so a gap is visible, not silent.

``message(obj)`` renders a keyed error or problem (``key`` + ``params``, e.g. :class:`cati.i18n.KeyedError`,
:class:`cati.study.loader.Problem`) in the visitor's language; views show ``message(exc)``, never ``str(exc)``
(the English text for logs).

Flask-Babel is registered in :func:`init_i18n` with :func:`current_language` as its locale selector and the same
in-memory catalogues, so ``flask_babel.get_locale()``, its date/number filters and ``{% trans %}`` agree with ``t``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, has_app_context, session
from flask_babel import Babel, Domain, get_locale

from cati import i18n as core
from cati.i18n import LANGUAGE_NAMES, LANGUAGES

__all__ = ["LANGUAGES", "LANGUAGE_NAMES", "T", "current_language", "translate", "t", "message", "init_i18n"]


class _Keys:
    """Membership test on the catalogue's keys (``"key" in T``), for code that asks whether a key exists."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and core.has_key(key)

    def __iter__(self):
        return iter(core.messages(core.DEFAULT_LANGUAGE))

    def __len__(self) -> int:
        return len(core.messages(core.DEFAULT_LANGUAGE))


#: The catalogue's keys (membership only, as web/supervisor.py asks ``f"part_{name}" in T``; the texts are in the
#: .po files).
T = _Keys()


def current_language() -> str:
    """The visitor's language: their choice in this session, else the signed-in user's, else the default."""
    lang = session.get("lang")
    if lang in LANGUAGES:
        return lang
    user = g.get("user")
    if user is not None and user.language in LANGUAGES:
        return user.language
    return current_app.config.get("DEFAULT_LANGUAGE", "zh-CN")


def _strict() -> bool:
    return bool(has_app_context() and current_app.testing)


def translate(key: str, lang: str | None = None, /, **fields: Any) -> str:
    """The text of ``key`` in ``lang`` (default: the current language), with ``fields`` filled in."""
    return core.lookup(key, lang or current_language(), fields, strict=_strict())


t = translate


def message(obj: Any, lang: str | None = None) -> str:
    """A keyed error or problem (or anything with ``message(lang)``) in ``lang`` (default: the current language).

    Keys missing from the catalogue raise in testing, as in :func:`translate`.
    """
    lang = lang or current_language()
    key = getattr(obj, "key", None)
    if isinstance(key, str) and key and _strict() and not core.has_key(key):
        raise core.MissingTranslation(f"i18n: no message {key!r} in the catalogue")
    return core.render(obj, lang)


class _CatalogueDomain(Domain):
    """Flask-Babel's domain served from :mod:`cati.i18n`'s in-memory catalogues (no .mo files on disk)."""

    def get_translations(self):
        return core.translations(core.language_for(get_locale()))


class _Babel(Babel):
    @property
    def domain_instance(self):
        return _CatalogueDomain(domain=core.DOMAIN)


def init_i18n(app: Flask) -> None:
    """Register Flask-Babel (locale = :func:`current_language`) and make ``t``, ``message``, ``lang`` and the
    language list available in every template."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", core.locale_for(app.config.get("DEFAULT_LANGUAGE", "zh-CN")))
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(core.TRANSLATIONS_DIR))
    _Babel(app, locale_selector=lambda: core.locale_for(current_language()))

    @app.context_processor
    def _inject():
        return {"t": translate, "message": message, "lang": current_language(), "LANGUAGES": LANGUAGES,
                "LANGUAGE_NAMES": LANGUAGE_NAMES}
