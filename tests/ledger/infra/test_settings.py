"""The one typed ``Settings``: built once at start-up, refusing unknown keys, wrong types and ranges."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.infra.settings import Calendar, Settings, SettingsError

UTC = dt.timezone.utc


def test_defaults_and_the_operator_mapping():
    s = Settings.from_mapping({"earning": {"volunteer_daily_cap": 5, "tip_categories": ["theft"]},
                               "rate_limits": {"token_per_ip": 3}, "utc_offset_hours": -5,
                               "volunteer_daily_limit": None, "spent_code_retention_s": 600, "rmb_per_bean": 2})
    assert s.earning.volunteer_daily_cap == 5 and s.earning.tip_categories == ("theft",)
    assert s.earning.volunteer_monthly_cap == Settings().earning.volunteer_monthly_cap
    assert s.rate_limits.token_per_ip == 3 and s.redemption.volunteer_daily_limit is None
    assert s.calendar == Calendar(utc_offset_hours=-5) and s.retention.spent_code_retention_s == 600
    assert s.rmb_per_bean == 2 and Settings.from_mapping(s.as_mapping()) == s
    # overrides keep what they do not name
    t = s.with_overrides({"earning": {"officer_daily_cap": 9}})
    assert (t.earning.volunteer_daily_cap, t.earning.officer_daily_cap) == (5, 9)


@pytest.mark.parametrize("bad, words", [
    ({"utc_ofset_hours": 8}, "unknown setting 'utc_ofset_hours'"),
    ({"earning": {"volunter_daily_cap": 1}}, "unknown setting earning.volunter_daily_cap"),
    ({"rate_limits": {"tokens": 1}}, "unknown setting rate_limits.tokens"),
    ({"earning": 5}, "'earning' must be a mapping"),
    ({"utc_offset_hours": "8"}, "'utc_offset_hours' must be a whole number"),
    ({"utc_offset_hours": 8.5}, "'utc_offset_hours' must be a whole number"),
    ({"utc_offset_hours": 15}, "between -12 and 14"),
    ({"max_pin_tries": True}, "'max_pin_tries' must be a whole number"),
    ({"volunteer_daily_limit": -1}, "'volunteer_daily_limit' must be between 0"),
    ({"earning": {"tip_tiers": {"low": 0}}}, "'tip_tiers' must map names to positive"),
    ({"earning": {"tip_categories": "theft"}}, "'tip_categories' must be a non-empty list"),
    ({"code_issuer": ""}, "'code_issuer' must be non-empty text"),
    ({"week_starts_on": 7}, "between 0 and 6"),
])
def test_bad_settings_are_refused_with_the_key_named(bad, words):
    with pytest.raises(SettingsError, match=words.replace("(", r"\(").replace(".", r"\.")):
        Settings.from_mapping(bad)


def test_the_app_refuses_to_start_on_a_bad_setting(app_config):
    from goldbean.app import create_app

    with pytest.raises(SettingsError, match="unknown setting 'volunteer_daily_limt'"):
        create_app({**app_config, "LEDGER_SETTINGS": {"volunteer_daily_limt": 100}})


def test_the_app_reads_a_settings_file(app_config, tmp_path, monkeypatch):
    from doors import books_of
    from goldbean.app import create_app

    path = tmp_path / "ledger.json"
    path.write_text('{"utc_offset_hours": 7, "earning": {"volunteer_daily_cap": 77}}', encoding="utf-8")
    monkeypatch.setenv("GOLDBEAN_LEDGER_SETTINGS", str(path))
    app = create_app({**app_config, "LEDGER_SETTINGS": {"volunteer_daily_limit": 5}})
    books = books_of(app)
    assert (books.calendar.utc_offset_hours, books.settings.earning.volunteer_daily_cap) == (7, 77)
    assert books.settings.redemption.volunteer_daily_limit == 5
    books.engine.dispose()
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(SettingsError, match="must hold a JSON object"):
        create_app(app_config)


def test_calendar_days_months_and_weeks():
    cal = Calendar()  # Kunming, UTC+8
    late = dt.datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # 00:30 on 1 December, local
    assert cal.today(late) == dt.date(2026, 12, 1) and cal.month_of(late) == (2026, 12)
    assert cal.day_bounds(late) == (dt.datetime(2026, 11, 30, 16, tzinfo=UTC), dt.datetime(2026, 12, 1, 16, tzinfo=UTC))
    assert cal.month_bounds(2026, 12) == (dt.datetime(2026, 11, 30, 16, tzinfo=UTC),
                                          dt.datetime(2026, 12, 31, 16, tzinfo=UTC))
    assert cal.week_start(dt.date(2026, 11, 29)) == dt.date(2026, 11, 23)  # a Sunday: the week began Monday
    assert Calendar(week_starts_on=6).week_start(dt.date(2026, 11, 29)) == dt.date(2026, 11, 29)
    assert cal.format(late) == "2026-12-01 00:30" and cal.label == "UTC+08:00"
    assert Calendar(utc_offset_hours=-5).label == "UTC-05:00"
    assert cal.parse_local(dt.datetime(2026, 12, 1, 0, 30)) == late
    with pytest.raises(ValueError, match="naive"):
        cal.today(dt.datetime(2026, 12, 1))
