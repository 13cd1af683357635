"""Flask-Babel is registered by init_i18n: its locale follows current_language(), and its gettext, t() and
message() read the same catalogue."""

from __future__ import annotations

import pytest
from flask import Flask, render_template_string, session
from flask_babel import get_locale
from flask_babel import gettext as babel_gettext

from cati.i18n import MissingTranslation
from cati.services.users import UserError
from cati.web.i18n import init_i18n, message, translate

PAGE = "{{ _('login') }}|{{ t('login') }}|{{ message(err) }}"


@pytest.fixture
def app():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True)
    init_i18n(app)
    return app


def test_chinese_by_default(app):
    with app.test_request_context():
        assert str(get_locale()) == "zh_Hans_CN"
        assert render_template_string(PAGE, err=UserError("username_empty")) == "登录|登录|用户名不能为空"


def test_the_visitors_choice_switches_every_path(app):
    with app.test_request_context():
        session["lang"] = "en"
        assert str(get_locale()) == "en" and babel_gettext("logout") == "Sign out"
        assert render_template_string(PAGE, err=UserError("username_empty")) == \
            "Sign in|Sign in|username must not be empty"
        assert message(UserError("user_exists", username="li"), "zh-CN") == "用户 li 已存在"


def test_a_missing_key_raises_in_testing(app):
    with app.test_request_context(), pytest.raises(MissingTranslation):
        translate("no_such_key")
