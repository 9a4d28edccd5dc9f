"""The catalog in a real browser: cards, search, a component's forms with validation, importing a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.services import accounts, catalog
from app.storage.db import Database
from tests.e2e.conftest import ConsoleWatcher, login, screenshot

pytestmark = pytest.mark.browser
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "component-json"
ODD = {
    "title": "Oddities",
    "version": "1.0.0",
    "description": "A component with every kind of field.",
    "actions": {
        "go": {
            "title": "Go somewhere",
            "main": "./go.js",
            "fields": {
                "target": {"label": "Target", "viewClass": "TextFieldView", "required": True},
                "mode": {
                    "label": "Mode",
                    "viewClass": "SelectView",
                    "model": {"fast": "Fast", "slow": "Slow"},
                },
                "shape": {"label": "Shape", "viewClass": "HologramView"},
                "expression": {"label": "Mapping", "viewClass": "JSONataView"},
            },
        }
    },
}


# Real descriptors whose forms must render: selects with static and dynamic models, password and
# checkbox fields, composite elastic.io views, credentials forms.
REAL_FORMS = [
    "elasticio__csv-component",
    "elasticio__gspreadsheets",
    "elasticio__rest-api-component-v2",
    "elasticio__sftp-component",
    "elasticio__salesforce-component",
]


@pytest.fixture(scope="module")
def imported(hub) -> None:
    db = Database.connect(f"sqlite:///{hub.data_dir / 'hub.db'}")
    try:
        acme = accounts.find_tenant_by_slug(db, "acme")
        catalog.import_descriptor(db, ODD, tenant_id=acme.id, name="oddities")
        catalog.import_descriptor(
            db, (FIXTURES / "elasticio__postgresql-component.json").read_bytes(), name="postgresql"
        )
        for fixture in REAL_FORMS:
            catalog.import_descriptor(
                db, (FIXTURES / f"{fixture}.json").read_bytes(), name=fixture.split("__")[1]
            )
    finally:
        db.dispose()


def test_browse_search_and_validate_a_form(hub, imported, page) -> None:
    watcher = ConsoleWatcher(page)
    login(page, hub)
    page.goto(f"{hub.base_url}/catalog")
    expect(page.get_by_test_id("component-card").first).to_be_visible()
    # Built-ins (global) and this tenant's import are both there.
    expect(page.get_by_test_id("component-card").filter(has_text="JSONata transform")).to_be_visible()
    page.get_by_test_id("catalog-search").fill("odd")
    expect(page.get_by_test_id("component-card")).to_have_count(1)
    screenshot(page, "catalog-list")
    page.get_by_test_id("component-card").click()
    expect(page.get_by_test_id("component-title")).to_have_text("Oddities")
    expect(page.get_by_text("This field's view (HologramView) is not known here")).to_be_visible()

    form = page.get_by_test_id("function-card").filter(has_text="Go somewhere")
    form.get_by_test_id("check-form").click()
    expect(form.get_by_test_id("field-error")).to_have_text("Target is required.")
    form.locator("textarea[name=expression]").fill("{ broken")
    form.locator("input[name=target]").fill("the moon")
    form.get_by_test_id("check-form").click()
    expect(form.get_by_test_id("field-error")).to_contain_text("Not a valid JSONata expression")
    form.locator("textarea[name=expression]").fill("{'to': target}")
    form.locator("select[name=mode]").select_option("slow")
    form.get_by_test_id("check-form").click()
    expect(form.get_by_text("Valid: this configuration can be saved.")).to_be_visible()
    screenshot(page, "catalog-detail")
    page.get_by_test_id("catalog-back").click()
    expect(page.get_by_test_id("catalog-search")).to_be_visible()
    assert watcher.problems == []


def test_delete_a_tenant_component(hub, imported, page) -> None:
    login(page, hub)
    page.goto(f"{hub.base_url}/catalog")
    page.get_by_test_id("catalog-search").fill("odd")
    expect(page.get_by_test_id("component-card")).to_have_count(1)
    page.get_by_test_id("component-card").click()
    page.get_by_test_id("delete-component").click()
    page.get_by_test_id("confirm-delete").click()
    expect(page.get_by_test_id("catalog-search")).to_be_visible()
    page.get_by_test_id("catalog-search").fill("odd")
    expect(page.get_by_test_id("component-card")).to_have_count(0)
    # Global components offer no delete.
    page.get_by_test_id("catalog-search").fill("postgre")
    expect(page.get_by_test_id("component-card")).to_have_count(1)
    page.get_by_test_id("component-card").click()
    expect(page.get_by_test_id("component-title")).to_have_text("PostreSQL")
    expect(page.get_by_test_id("delete-component")).to_have_count(0)


def test_import_a_descriptor_file_shows_its_warnings(hub, imported, page) -> None:
    login(page, hub)
    page.goto(f"{hub.base_url}/catalog")
    page.locator("#component-upload input[type=file]").set_input_files(
        str(FIXTURES / "elasticio__filter-component.json")
    )
    page.get_by_test_id("import-button").click()
    result = page.get_by_test_id("import-result")
    expect(result).to_contain_text("filter-component 0.0.0+")
    expect(result).to_contain_text("key 'Note' read as 'note'")
    page.get_by_test_id("catalog-search").fill("filter")
    expect(page.get_by_test_id("component-card")).to_have_count(2)  # the built-in filter and the import
    expect(page.get_by_test_id("component-card").filter(has_text="filter-component")).to_be_visible()
    screenshot(page, "catalog-import")

    broken = hub.data_dir / "component.json"
    broken.write_text('{"title": "x", "triggers": []}')
    page.locator("#component-upload input[type=file]").set_input_files(str(broken))
    page.get_by_test_id("import-button").click()
    expect(page.get_by_test_id("import-error")).to_contain_text(
        "triggers: must be an object keyed by function id"
    )


def test_a_viewer_cannot_import(hub, imported, page) -> None:
    login(page, hub)
    page.get_by_test_id("tenant-switcher").click()
    page.get_by_role("option", name="Beta Corp").click()  # where the owner is only a viewer
    page.get_by_text("Now working in Beta Corp.").wait_for()
    page.goto(f"{hub.base_url}/catalog")
    page.locator("#component-upload input[type=file]").set_input_files(
        str(FIXTURES / "elasticio__xml-component.json")
    )
    page.get_by_test_id("import-button").click()
    expect(page.get_by_test_id("import-error")).to_have_text(
        "Your role here (viewer) cannot import components; ask an editor."
    )


@pytest.mark.parametrize("fixture", REAL_FORMS)
def test_real_descriptors_render_their_forms(hub, imported, page, fixture: str) -> None:
    raw = json.loads((FIXTURES / f"{fixture}.json").read_text())
    watcher = ConsoleWatcher(page)
    login(page, hub)
    page.goto(f"{hub.base_url}/catalog")
    name = fixture.split("__")[1]
    page.get_by_test_id("catalog-search").fill(name)
    card = page.get_by_test_id("component-card").filter(has_text=name)
    expect(card).to_have_count(1)
    card.click()
    expect(page.get_by_test_id("component-title")).to_have_text(raw["title"])
    functions = len(raw.get("triggers") or {}) + len(raw.get("actions") or {})
    expect(page.get_by_test_id("function-card")).to_have_count(functions)
    # The first function with a required field refuses an empty form, next to that field.
    for index, function in enumerate(
        [*(raw.get("triggers") or {}).values(), *(raw.get("actions") or {}).values()]
    ):
        required = [
            f for f in (function.get("fields") or {}).values() if isinstance(f, dict) and f.get("required")
        ]
        if required:
            form = page.get_by_test_id("function-card").nth(index)
            form.get_by_test_id("check-form").click()
            expect(form.get_by_test_id("field-error").first).to_contain_text("is required.")
            break
    screenshot(page, f"catalog-form-{name}")
    assert watcher.problems == []


def test_adding_an_image_says_what_this_hub_needs(hub, imported, page) -> None:
    login(page, hub)
    page.goto(f"{hub.base_url}/catalog")
    page.get_by_test_id("add-image").click()
    expect(page.get_by_test_id("import-error")).to_have_text(
        "Type the image's reference, e.g. registry.example.com:5000/team/crm:1.4."
    )
    page.get_by_test_id("image-reference").fill("registry.example.com/team/crm:1.4")
    page.get_by_test_id("add-image").click()
    expect(page.get_by_test_id("import-error")).to_contain_text(
        "run in the docker executor, which this hub does not have: set HUB_EXECUTOR=docker"
    )
