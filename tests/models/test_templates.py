"""The reviewed templates: no blaming or protected-characteristic words; bad files refused."""

from __future__ import annotations

import pytest

from features.needs import EVENT_SKILLS
from models import _templates
from models._reason_groups import GROUPS
from tests.models.conftest import TEMPLATES

# --- language ------------------------------------------------------------------------------------


def _blocked(text: str) -> list[str]:
    return _templates.blocked_words(text, templates=TEMPLATES)


def test_no_protected_characteristic_or_blaming_word_in_templates_or_reasons(explained):
    assert all(not _blocked(text) for text in _templates._all_texts(TEMPLATES.sections))
    rendered = set(explained["reasons"])
    assert len(rendered) > 50
    assert [text for text in rendered if _blocked(text)] == []
    for term in ("sex", "ethnic", "disab", "birth", "aged"):
        assert not any(term in text.lower() for text in rendered)


def test_the_language_check_catches_what_it_must():
    assert _blocked("A troubled household") == ["troubled"]
    assert _blocked("a Problem Family with arrears") == ["problem family"]
    assert "asian" in _blocked("Asian household")
    assert _blocked("Known to 3 agencies") == []  # "age" inside "agencies" is not the word age


def test_a_template_file_with_a_blaming_word_is_refused(tmp_path):
    text = _templates.TEMPLATES_PATH.read_text(encoding="utf-8")
    bad = tmp_path / "reason_templates.toml"
    bad.write_text(text.replace("Rents privately", "Chaotic private tenancy"), encoding="utf-8")
    with pytest.raises(ValueError, match="chaotic"):
        _templates.load_templates(bad)


def test_a_template_naming_a_skill_outside_the_contract_is_refused(tmp_path):
    text = _templates.TEMPLATES_PATH.read_text(encoding="utf-8")
    bad = tmp_path / "reason_templates.toml"
    bad.write_text(text.replace('temporary = ["housing"]', 'temporary = ["policing"]'), "utf-8")
    with pytest.raises(ValueError, match="policing"):
        _templates.load_templates(bad)


def test_the_skills_of_records_are_set_in_one_place_only(tmp_path):
    """An event type's skills live in features.needs (the needs and the reasons share them): a
    second copy in the templates file is refused."""
    text = _templates.TEMPLATES_PATH.read_text(encoding="utf-8")
    bad = tmp_path / "reason_templates.toml"
    marker = 'record = "Arrest"\n'
    bad.write_text(text.replace(marker, marker + 'skills = ["asb"]\n'), encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[events.arrest\] skills"):
        _templates.load_templates(bad)
    templates = _templates.load_templates()
    arrest = next(group for group in GROUPS if group.key == "arrest")
    assert templates.skills(arrest, "many") == EVENT_SKILLS["arrest"] == ("asb",)
