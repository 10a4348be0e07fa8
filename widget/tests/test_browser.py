"""The widget in a real browser: headless Chromium loads a customer's page from another loopback origin, which
embeds the snippet; the API runs under uvicorn and answers through the OpenAI-compatible stub on loopback.

Screenshots of the open widget (desktop and phone) are written to WIDGET_SCREENSHOTS_DIR (default
var/screenshots); docs/widget.md shows one of them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import httpx
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from accounts.services import api_key_create
from bothero.testing.factories import BotFactory
from bothero.testing.helpers import wait_for_window_room
from bothero.testing.processes import BASE_DIR, uvicorn_server
from conftest import make_actor
from conversations.models import Conversation, Lead, Message
from conversations.testing.llm_server import LLMStub
from conversations.tests.conftest import train
from widget.testing import CHROMEDRIVER, CHROMIUM, PageServer, chromium, console_errors, shadow, snippet_page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromium-driver (.ci/run installs them)"
    ),
]

SCREENSHOTS = Path(os.environ.get("WIDGET_SCREENSHOTS_DIR", BASE_DIR / "var" / "screenshots"))
WAIT = 20


@pytest.fixture(scope="module")
def stub():
    # A realistic stream: the answer arrives a token at a time.
    with LLMStub(token_delay=0.03) as stub:
        yield stub


@pytest.fixture(scope="module")
def api(django_db_setup, django_db_blocker, stub):
    with (
        django_db_blocker.unblock(),
        uvicorn_server(
            LLM_PROVIDER="openai",
            LLM_BASE_URL=stub.base_url,
            LLM_API_KEY="sk-test",
            LLM_MODEL="",
            LLM_MAX_RETRIES="0",
            REDIS_URL=os.environ.get("REDIS_URL", ""),
        ) as url,
    ):
        yield url


@pytest.fixture(scope="module")
def pages():
    with PageServer() as server:
        yield server


@pytest.fixture(scope="module")
def driver():
    with chromium() as browser:
        yield browser


@pytest.fixture
def browser(driver):
    """The module's browser with a desktop window and an empty console log.

    Each test has bots of its own, so the conversation a visitor keeps in localStorage (per bot) starts afresh.
    """
    driver.set_window_size(1280, 900)
    driver.get("about:blank")
    driver.get_log("browser")
    return driver


@pytest.fixture
def shop(transactional_db, api, pages):
    """Alice's trained bot, a publishable key for the page server's `localhost` origin, and the page."""
    actor = make_actor()
    bot = BotFactory(
        tenant=actor.tenant,
        name="Acme support",
        welcome_message="Hi! Ask me about opening hours, refunds or shipping.",
        lead_capture={"enabled": True, "fields": ["name", "email"]},
        widget={"color": "#0f766e", "position": "right", "launcher_text": "Ask Acme"},
    )
    train(bot)
    created = api_key_create(
        tenant=actor.tenant,
        name="Website",
        key_type="publishable",
        bot_ids=[bot.public_id],
        allowed_origins=[pages.origin("localhost")],
        identity_verification="optional",
    )
    path = f"/shop-{bot.public_id}.html"
    pages.pages[path] = snippet_page(api=api, bot_id=bot.public_id, key=created.key)
    return {"actor": actor, "bot": bot, "key": created, "url": pages.url(path), "path": path}


def wait_for(driver, condition, timeout: float = WAIT):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d))
    except TimeoutException:
        # Say what the page showed and logged, rather than only that it timed out.
        alert = shadow(driver, '[role="alert"]')
        raise AssertionError(
            f"Timed out. Widget alert: {alert.get_attribute('textContent') if alert else None!r}; "
            f"console: {driver.get_log('browser')}"
        ) from None


def open_widget(driver):
    launcher = wait_for(driver, lambda d: shadow(d, 'button[aria-label="Open chat"]'))
    wait_for(driver, lambda d: d.execute_script("return !!(window.BotHero && BotHero.element.ready)"))
    launcher.click()
    wait_for(driver, lambda d: shadow(d, "section.panel").is_displayed())


def answers(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelector('bothero-chat').shadowRoot"
        ".querySelectorAll('.msg.assistant:not([aria-busy])')).map(function (m) {"
        " return m.querySelector('.text').textContent; });"
    )


def record_stream_updates(driver):
    """Count the changes of the answer's text as it arrives (a MutationObserver in the page)."""
    driver.execute_script(
        "window.__updates = 0; var log = document.querySelector('bothero-chat').shadowRoot.querySelector('.log');"
        "new MutationObserver(function (m) { window.__updates += m.length; })"
        ".observe(log, {subtree: true, characterData: true, childList: true});"
    )


def test_a_visitor_asks_on_the_customers_site_and_sees_the_streamed_answer_and_its_source(browser, shop, stub):
    browser.get(shop["url"])
    open_widget(browser)
    # Inside the open shadow root: the bot's name and welcome message, the log, the text box, Send, close.
    assert shadow(browser, "header h2").text == "Acme support"
    log = shadow(browser, '[role="log"]')
    assert log.get_attribute("aria-live") == "polite"
    assert "opening hours, refunds or shipping" in log.text
    assert shadow(browser, 'button[aria-label="Close chat"]').is_displayed()
    # Theming from the bot's widget settings; the host page's CSS does not reach inside.
    launcher = shadow(browser, 'button[aria-label="Open chat"]')
    assert launcher.text == "Ask Acme"
    assert launcher.value_of_css_property("background-color") == "rgba(15, 118, 110, 1)"
    assert launcher.value_of_css_property("font-size") != "40px"

    record_stream_updates(browser)
    box = shadow(browser, 'textarea[aria-label="Message"]')
    box.send_keys("When are you open?")
    box.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: any("Stub answer to: When are you open?" in text for text in answers(d)))
    assert browser.execute_script("return window.__updates") > 5  # token by token, not in one piece
    sources = shadow(browser, '.msg.assistant ul[aria-label="Sources"]')
    assert "Acme Widgets FAQ" in sources.text
    assert box.get_attribute("value") == ""

    conversation = Conversation.objects.get(bot=shop["bot"])
    assert conversation.visitor_hash
    # Thumbs up is stored on the answer.
    shadow(browser, 'button[aria-label="Helpful"]').click()
    wait_for(browser, lambda d: shadow(d, 'button[aria-label="Helpful"]').get_attribute("aria-pressed") == "true")
    answer = Message.objects.get(conversation=conversation, role="assistant")
    answer.refresh_from_db()
    assert answer.feedback_rating == "up"
    # The lead form (lead capture is on): the visitor leaves an email.
    form = wait_for(browser, lambda d: shadow(d, 'form[aria-label="Leave your contact details"]'))
    form.find_element("css selector", 'input[name="email"]').send_keys("ada@example.com")
    form.find_element("css selector", 'button[type="submit"]').click()
    wait_for(browser, lambda d: "We'll be in touch" in shadow(d, '[role="log"]').text)
    assert Lead.objects.get(conversation=conversation).email == "ada@example.com"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "widget-desktop.png"))
    assert console_errors(browser) == []

    # A page load later the visitor's conversation is still there, and continues.
    browser.get(shop["url"])
    open_widget(browser)
    wait_for(browser, lambda d: "Stub answer to: When are you open?" in shadow(d, '[role="log"]').text)
    assert console_errors(browser) == []


def test_a_phone_sized_window_gets_the_full_screen_widget(browser, shop):
    browser.set_window_size(390, 844)
    browser.get(shop["url"])
    open_widget(browser)
    panel = shadow(browser, "section.panel").rect
    width, height = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    assert (panel["x"], panel["y"], panel["width"], panel["height"]) == (0, 0, width, height)
    box = shadow(browser, 'textarea[aria-label="Message"]')
    box.send_keys("Do you ship express?")
    shadow(browser, 'button[aria-label="Send"]').click()
    wait_for(browser, lambda d: any("Do you ship express?" in text for text in answers(d)))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "widget-phone.png"))
    assert console_errors(browser) == []


def test_keyboard_only_use(browser, shop):
    browser.get(shop["url"])
    wait_for(browser, lambda d: d.execute_script("return !!(window.BotHero && BotHero.element.ready)"))

    def focused_label():
        return browser.execute_script(
            "var a = document.activeElement; if (a && a.shadowRoot && a.shadowRoot.activeElement) a ="
            " a.shadowRoot.activeElement; return a ? a.getAttribute('aria-label') : null;"
        )

    keys = ActionChains(browser)
    for _ in range(10):  # Tab through the host page to the launcher
        keys.send_keys(Keys.TAB).perform()
        if focused_label() == "Open chat":
            break
    assert focused_label() == "Open chat"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    wait_for(browser, lambda d: focused_label() == "Message")
    # Shift+Enter is a new line; Enter sends.
    ActionChains(browser).send_keys("Refunds?").key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).send_keys(
        "Thanks"
    ).perform()
    assert shadow(browser, 'textarea[aria-label="Message"]').get_attribute("value") == "Refunds?\nThanks"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    wait_for(browser, lambda d: any("Refunds?\nThanks" in text for text in answers(d)))
    # Escape closes the chat and gives the focus back to the launcher.
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    wait_for(browser, lambda d: not shadow(d, "section.panel").is_displayed())
    assert focused_label() == "Open chat"
    assert console_errors(browser) == []


def test_the_javascript_api_opens_asks_identifies_and_closes(browser, shop):
    browser.get(shop["url"])
    wait_for(browser, lambda d: d.execute_script("return !!(window.BotHero && BotHero.element.ready)"))
    user_hash = hmac.new(shop["key"].identity_secret.encode(), b"cust-981", hashlib.sha256).hexdigest()
    browser.execute_script("return BotHero.identify('cust-981', arguments[0])", user_hash)
    browser.execute_script("BotHero.ask('What does shipping cost?')")
    wait_for(browser, lambda d: shadow(d, "section.panel").is_displayed())
    wait_for(browser, lambda d: any("What does shipping cost?" in text for text in answers(d)))
    assert Conversation.objects.get(bot=shop["bot"]).end_user_id == "cust-981"
    browser.execute_script("BotHero.close()")
    assert not shadow(browser, "section.panel").is_displayed()
    browser.execute_script("BotHero.open()")
    assert shadow(browser, "section.panel").is_displayed()
    assert console_errors(browser) == []
    # A wrong hash is refused with a clear message (the browser logs the 403 itself).
    browser.execute_script("return BotHero.identify('cust-981', 'bad')")
    wait_for(browser, lambda d: "sign in" in shadow(d, '[role="alert"]').text)
    assert [entry["message"].endswith("status of 403 (Forbidden)") for entry in console_errors(browser)] == [True]


def test_a_site_the_key_does_not_allow_gets_a_clear_message_and_no_answer(browser, shop, pages, stub):
    # The same page, reached as http://127.0.0.1:PORT: an origin the key does not list.
    url = pages.url(shop["path"], host="127.0.0.1")
    requests_before = len(stub.requests)
    browser.get(url)
    launcher = wait_for(browser, lambda d: shadow(d, 'button[aria-label="Open chat"]'))
    launcher.click()
    alert = wait_for(browser, lambda d: shadow(d, '[role="alert"]'))
    wait_for(browser, lambda d: "not enabled on this website" in alert.text)
    box = shadow(browser, 'textarea[aria-label="Message"]')
    box.send_keys("When are you open?")
    box.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: "not enabled on this website" in shadow(d, '[role="alert"]').text)
    assert answers(browser) == []
    assert not Conversation.objects.filter(bot=shop["bot"]).exists()
    assert len(stub.requests) == requests_before


def test_a_publishable_key_is_refused_on_bots_and_uploads_from_the_browser_too(browser, shop, api):
    browser.get(shop["url"])
    wait_for(browser, lambda d: d.execute_script("return !!(window.BotHero && BotHero.element.ready)"))
    key = shop["key"].key
    outcomes = browser.execute_async_script(
        """
        var done = arguments[arguments.length - 1], api = arguments[0], key = arguments[1];
        var headers = {Authorization: 'Bearer ' + key, 'X-BotHero-Visitor': 'v_abcdefghijklmnopqrstu'};
        function attempt(method, path, body) {
          return fetch(api + path, {method: method, headers: headers, body: body}).then(
            function (r) { return 'status ' + r.status; }, function () { return 'blocked'; });
        }
        var form = new FormData(); form.append('bot_id', 'x'); form.append('file', new Blob(['hi']), 'a.txt');
        Promise.all([attempt('GET', '/v1/bots'), attempt('POST', '/v1/knowledge/upload', form)]).then(done);
        """,
        api,
        key,
    )
    # No CORS on those endpoints: the browser does not even let the page see an answer.
    assert outcomes == ["blocked", "blocked"]
    # And the API itself says why, to anyone calling it outside a browser.
    for method, path in (("GET", "/v1/bots"), ("POST", "/v1/knowledge/upload")):
        response = httpx.request(
            method,
            f"{api}{path}",
            headers={"Authorization": f"Bearer {key}", "Origin": shop["url"].rsplit("/", 1)[0]},
            files={"file": ("a.txt", b"hi")} if method == "POST" else None,
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "publishable_key_not_allowed"


def test_the_hosted_chat_page(browser, shop, api):
    browser.get(f"{api}/chat/{shop['bot'].public_id}?key={shop['key'].key}")
    wait_for(browser, lambda d: shadow(d, "section.panel") and shadow(d, "section.panel").is_displayed())
    assert shadow(browser, 'button[aria-label="Open chat"]') is None  # the page is the chat
    wait_for(browser, lambda d: d.execute_script("return !!BotHero.element.ready"))
    box = shadow(browser, 'textarea[aria-label="Message"]')
    box.send_keys("How long do refunds take?")
    box.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: any("How long do refunds take?" in text for text in answers(d)))
    assert console_errors(browser) == []


def test_clear_messages_when_rate_limited_and_offline(browser, shop, pages, api):
    # A key allowing each visitor two requests a minute: the settings and one question; the next is one too many.
    bot = shop["bot"]
    tight = api_key_create(
        tenant=bot.tenant,
        name="Tight",
        key_type="publishable",
        bot_ids=[bot.public_id],
        allowed_origins=[pages.origin("localhost")],
        limits={"visitor_requests_per_minute": 2},
    )
    path = f"/tight-{bot.public_id}.html"
    pages.pages[path] = snippet_page(api=api, bot_id=bot.public_id, key=tight.key)
    wait_for_window_room(20)
    browser.get(pages.url(path))
    open_widget(browser)
    browser.execute_script("BotHero.ask('When are you open?')")
    wait_for(browser, lambda d: any("When are you open?" in text for text in answers(d)))
    browser.execute_script("BotHero.ask('And on Sundays?')")
    wait_for(browser, lambda d: "sending messages too quickly" in shadow(d, '[role="alert"]').text)
    assert "wait" in shadow(browser, '[role="alert"]').text
    # The text is given back, to send again later.
    assert shadow(browser, 'textarea[aria-label="Message"]').get_attribute("value") == "And on Sundays?"

    browser.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    try:
        browser.execute_script("BotHero.ask('Are you there?')")
        wait_for(browser, lambda d: "appear to be offline" in shadow(d, '[role="alert"]').text)
    finally:
        browser.delete_network_conditions()


def agent_messages(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelector('bothero-chat').shadowRoot"
        ".querySelectorAll('.msg.agent .text')).map(function (m) { return m.textContent; });"
    )


def notices(driver) -> str:
    return " | ".join(
        driver.execute_script(
            "return Array.from(document.querySelector('bothero-chat').shadowRoot"
            ".querySelectorAll('.notice')).map(function (n) { return n.textContent; });"
        )
    )


def test_a_visitor_asks_for_a_person_and_the_agents_replies_arrive_without_a_reload(browser, shop, api):
    bot = shop["bot"]
    bot.handoff = {"enabled": True, "phrases": ["person"], "message": "Sure, I'm getting a person from our team."}
    bot.save(update_fields=["handoff"])
    agent = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {shop['actor'].key}"}, timeout=15)
    browser.get(shop["url"])
    open_widget(browser)
    box = shadow(browser, 'textarea[aria-label="Message"]')
    box.send_keys("Can I talk to a person?")
    box.send_keys(Keys.ENTER)
    # The bot's handoff notice, then the widget's own: a person will reply here.
    wait_for(browser, lambda d: "getting a person" in " ".join(answers(d)))
    wait_for(browser, lambda d: "A person will reply here" in notices(d))
    conversation = Conversation.objects.get(bot=bot)
    assert conversation.status == "handoff"

    # An agent replies through the API: the reply appears, as a person's, with no reload.
    reply = agent.post(
        f"/v1/conversations/{conversation.public_id}/messages",
        json={"role": "agent", "content": "Hi, Sam here. How can I help?"},
    )
    assert reply.status_code == 201
    wait_for(browser, lambda d: agent_messages(d) == ["Hi, Sam here. How can I help?"])
    person = shadow(browser, ".msg.agent")
    assert "Team" in person.find_element("css selector", ".who").text
    assert person.value_of_css_property("background-color") != shadow(browser, ".msg.assistant").value_of_css_property(
        "background-color"
    )
    # The visitor's next message goes to the person (202): no empty answer from the bot, shown once.
    box.send_keys("My order hasn't arrived.")
    box.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: Message.objects.filter(conversation=conversation, role="user").count() == 2)
    wait_for(browser, lambda d: not shadow(d, ".msg[aria-busy]"))
    assert not browser.execute_script(
        "return Array.from(document.querySelector('bothero-chat').shadowRoot.querySelectorAll('.msg .text'))"
        ".some(function (t) { return !t.textContent; })"
    )

    # A page load later the widget follows the conversation again.
    browser.get(shop["url"])
    open_widget(browser)
    wait_for(browser, lambda d: "A person will reply here" in notices(d))
    assert agent_messages(browser) == ["Hi, Sam here. How can I help?"]
    agent.post(
        f"/v1/conversations/{conversation.public_id}/messages",
        json={"role": "agent", "content": "It left our warehouse today; here is the tracking link."},
    )
    wait_for(browser, lambda d: len(agent_messages(d)) == 2)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "widget-handoff.png"))

    # The agent closes the conversation: a clear notice, the box disabled, a new conversation on offer.
    assert agent.post(f"/v1/conversations/{conversation.public_id}/close").status_code == 200
    wait_for(browser, lambda d: "This conversation has ended" in notices(d))
    box = shadow(browser, 'textarea[aria-label="Message"]')
    assert not box.is_enabled()
    assert not shadow(browser, 'button[aria-label="Send"]').is_enabled()
    browser.save_screenshot(str(SCREENSHOTS / "widget-handoff-closed.png"))
    shadow(browser, ".notice button").click()
    wait_for(browser, lambda d: shadow(d, 'textarea[aria-label="Message"]').is_enabled())
    assert agent_messages(browser) == []
    assert console_errors(browser) == []
    agent.close()


def test_talk_to_a_person_and_back_to_the_bot(browser, shop, api, stub):
    bot = shop["bot"]
    bot.handoff = {"enabled": True, "message": "Connecting you with a person."}
    bot.save(update_fields=["handoff"])
    browser.get(shop["url"])
    open_widget(browser)
    # The bot hands conversations to a person: the header offers one.
    button = wait_for(browser, lambda d: shadow(d, "button.person"))
    wait_for(browser, lambda d: button.is_displayed())
    button.click()
    wait_for(browser, lambda d: "A person will reply here" in notices(d))
    assert not button.is_displayed()
    conversation = Conversation.objects.get(bot=bot)
    assert (conversation.status, conversation.handoff_reason) == ("handoff", "requested")
    assert "Connecting you with a person." in answers(browser)

    # The visitor closes the chat; a person's reply marks the launcher, until the chat is opened.
    browser.execute_script("BotHero.close()")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {shop['actor'].key}"}, timeout=15) as agent:
        agent.post(f"/v1/conversations/{conversation.public_id}/messages", json={"role": "agent", "content": "Hello!"})
        unread = wait_for(browser, lambda d: shadow(d, 'button[aria-label="Open chat (new message)"]'))
        assert "unread" in unread.get_attribute("class")
        browser.save_screenshot(str(SCREENSHOTS / "widget-unread.png"))
        unread.click()
        wait_for(browser, lambda d: agent_messages(d) == ["Hello!"])
        assert "unread" not in shadow(browser, "button.launcher").get_attribute("class")
        assert shadow(browser, "button.launcher").get_attribute("aria-label") == "Open chat"

        # An agent gives it back to the bot: the widget says so, and the bot answers again.
        assert agent.post(f"/v1/conversations/{conversation.public_id}/resume").status_code == 200
    wait_for(browser, lambda d: "chatting with the assistant again" in notices(d))
    wait_for(browser, lambda d: button.is_displayed())
    browser.execute_script("BotHero.ask('Do you ship abroad?')")
    wait_for(browser, lambda d: any("Stub answer to: Do you ship abroad?" in text for text in answers(d)))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "widget-handoff-resumed.png"))
    assert console_errors(browser) == []


def test_an_agent_who_takes_over_unasked_is_seen_live_while_the_chat_is_open(browser, shop, api, stub):
    bot = shop["bot"]
    browser.get(shop["url"])
    open_widget(browser)
    browser.execute_script("BotHero.ask('Do you ship abroad?')")
    wait_for(browser, lambda d: any("Stub answer to: Do you ship abroad?" in text for text in answers(d)))
    conversation = Conversation.objects.get(bot=bot)
    assert conversation.status == "bot"

    # An agent steps in on their own (the visitor did not ask, and says nothing more): seen with no reload.
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {shop['actor'].key}"}, timeout=15) as agent:
        reply = agent.post(
            f"/v1/conversations/{conversation.public_id}/messages",
            json={"role": "agent", "content": "Hi, Sam from Acme here: yes, we ship to 30 countries."},
        )
        assert reply.status_code == 201
        wait_for(browser, lambda d: agent_messages(d) == ["Hi, Sam from Acme here: yes, we ship to 30 countries."])
    wait_for(browser, lambda d: "A person will reply here" in notices(d))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "widget-agent-takeover.png"))
    assert console_errors(browser) == []


def test_a_closed_chat_holds_no_stream_while_the_bot_has_the_conversation(browser, shop):
    browser.get(shop["url"])
    open_widget(browser)
    browser.execute_script("BotHero.ask('Do you ship abroad?')")
    wait_for(browser, lambda d: any("Stub answer to: Do you ship abroad?" in text for text in answers(d)))
    wait_for(browser, lambda d: d.execute_script("return !!BotHero.element.following"))
    browser.execute_script("BotHero.close()")
    assert browser.execute_script("return BotHero.element.following") is None
    browser.execute_script("BotHero.open()")
    wait_for(browser, lambda d: d.execute_script("return !!BotHero.element.following"))
    assert console_errors(browser) == []
