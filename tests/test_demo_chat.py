"""The demo chat server, through HTTP as the Genesys Widgets `pureengage-v3-rest` transport calls it."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cookiebridge.demo import chat as demo_chat
from cookiebridge.demo.chat import CHAT_API_KEY, GREETING, SYSTEM_PARTICIPANT, ChatServer, parse_form

D = "/genesys/chat/v3/customer-support"
KEY = {"x-api-key": CHAT_API_KEY}
FORM = "application/x-www-form-urlencoded; charset=UTF-8"  # what jQuery sends
INDEX = re.compile(r"^(\d{13})-0$")
UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MESSAGE_FIELDS = {"type", "from", "index", "streamId", "utcTime", "visibility"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def chat(clock: FakeClock) -> ChatServer:
    return ChatServer(reply_delay=2.0, long_poll=0, clock=clock)


def app_for(server: ChatServer) -> Starlette:
    return Starlette(routes=server.routes(D))


@pytest.fixture
def client(chat: ChatServer) -> TestClient:
    return TestClient(app_for(chat), base_url="https://127.0.0.2:8443")


# -- what jQuery sends ------------------------------------------------------------------------------------------


def _uri(value: str) -> str:
    return quote(value, safe="-_.!~*'()")  # encodeURIComponent


def jquery_param(value: dict[str, Any]) -> str:
    """`$.param(value)` (not traditional): bracket nesting, `a[]` for lists of values, spaces as '+'."""
    pairs: list[str] = []

    def build(prefix: str, item: Any) -> None:
        if isinstance(item, dict):
            for key, child in item.items():
                build(f"{prefix}[{key}]", child)
        elif isinstance(item, list):
            for position, child in enumerate(item):
                build(f"{prefix}[{position if isinstance(child, (dict, list)) else ''}]", child)
        else:
            pairs.append(_uri(prefix) + "=" + _uri("" if item is None else str(item)))

    for key, item in value.items():
        build(key, item)
    return "&".join(pairs).replace("%20", "+")


def op() -> str:
    return str(uuid.uuid4())


def form_post(client: TestClient, path: str, data: dict[str, Any], token: str | None = None,
              method: str = "POST", operation: str | None = None) -> httpx.Response:
    headers = {**KEY, "content-type": FORM}
    if token:
        headers["x-nexus-client-key"] = token
    body = jquery_param({"data": data, "operationId": operation or op()})
    return client.request(method, D + path, content=body.encode(), headers=headers)


START_FORM = {
    "firstName": "Ann", "lastName": "Smith", "nickname": "Ann", "email": "ann@example.com", "subject": "",
    "endpoint": "customer-support",
    "userData": {"_genesys_source": "web", "_genesys_referrer": "", "_genesys_url": "https://a.test/x?y=1&z=2",
                 "_genesys_pageTitle": "Page one", "_genesys_browser": "Chrome", "_genesys_OS": "Linux"},
}
RESTORE_FORM = {"endpoint": "customer-support", "userData": START_FORM["userData"]}


def start(client: TestClient, data: dict[str, Any] | None = None) -> dict[str, str]:
    response = form_post(client, "", START_FORM if data is None else data)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def restore(client: TestClient, token: str) -> httpx.Response:
    return form_post(client, "", RESTORE_FORM, token=token)


def get(client: TestClient, session_id: str, token: str | None, **params: str) -> httpx.Response:
    headers = {**KEY, **({"x-nexus-client-key": token} if token else {})}
    return client.get(f"{D}/{session_id}/messages", params={"operationId": op(), **params}, headers=headers)


def poll(client: TestClient, session: dict[str, str], **params: str) -> dict[str, Any]:
    response = get(client, session["sessionId"], session["clientToken"], **params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def send(client: TestClient, session: dict[str, str], text: str, kind: str = "Text") -> httpx.Response:
    return form_post(client, f"/{session['sessionId']}/messages", {"type": kind, "text": text},
                     token=session["clientToken"])


def leave(client: TestClient, session: dict[str, str]) -> httpx.Response:
    path = f"/{session['sessionId']}/participants/{session['participantId']}"
    headers = {**KEY, "content-type": FORM, "x-nexus-client-key": session["clientToken"]}
    # jQuery sends a DELETE's data in the body, not the query.
    return client.request("DELETE", D + path, content=jquery_param({"operationId": op()}).encode(), headers=headers)


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("text", m["type"]) for m in messages]


def jwt_part(token: str, part: int) -> dict[str, Any]:
    segment = token.split(".")[part]
    # As the widget's atob() reads it: standard base64 only, padding optional.
    return json.loads(base64.b64decode(segment + "=" * (-len(segment) % 4), validate=True))


# -- start ------------------------------------------------------------------------------------------------------


def test_jquery_param_encodes_like_jquery() -> None:
    assert jquery_param({"data": {"type": "Text", "text": "a b&c"}, "operationId": "x"}) == \
        "data%5Btype%5D=Text&data%5Btext%5D=a+b%26c&operationId=x"
    assert jquery_param({"a": [1, 2], "b": None}) == "a%5B%5D=1&a%5B%5D=2&b="


def test_start_with_the_widgets_form_body(client: TestClient, chat: ChatServer) -> None:
    operation = op()
    response = form_post(client, "", START_FORM, operation=operation)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    assert set(body) == {"status", "data", "operationId", "referenceId"}
    assert body["status"] == {"code": "SUCCESS"} and body["operationId"] == operation
    uuid.UUID(body["referenceId"])
    data = body["data"]
    assert set(data) == {"clientToken", "sessionId", "participantId"}
    assert chat.session_ids() == [data["sessionId"]]
    assert chat.user_data(data["sessionId"]) == START_FORM["userData"]


def test_client_token_is_a_jwt_the_widget_can_decode(client: TestClient) -> None:
    data = start(client)
    token = data["clientToken"]
    assert jwt_part(token, 0) == {"alg": "HS256", "typ": "JWT"}
    payload = jwt_part(token, 1)
    assert set(payload) == {"sessionId", "participantId", "jti", "iat"}
    assert payload["sessionId"] == data["sessionId"] and payload["participantId"] == data["participantId"]
    assert abs(payload["iat"] - time.time()) < 60
    for _ in range(30):  # many tokens: none needs base64url's '-' or '_' in its payload
        assert re.fullmatch(r"[A-Za-z0-9]+", start(client)["clientToken"].split(".")[1])


def test_first_poll_has_the_joins_the_state_and_the_greeting(client: TestClient) -> None:
    session = start(client)
    messages = poll(client, session)["messages"]
    customer, agent, system, greeting = messages
    assert customer["type"] == "ParticipantJoined"
    assert customer["from"] == {"participantId": session["participantId"], "type": "Customer", "nickname": "Ann"}
    assert agent["type"] == "ParticipantJoined" and agent["from"]["type"] == "Agent"
    assert agent["from"]["nickname"] == "Agent"
    assert system["type"] == "System" and system["event"] == "InteractionStateChange"
    assert system["data"] == {"interactionState": "Active"}
    assert system["from"] == {"participantId": SYSTEM_PARTICIPANT, "type": "System", "nickname": "System"}
    assert greeting["type"] == "Text" and greeting["text"] == GREETING and greeting["from"] == agent["from"]
    for message in messages:
        assert MESSAGE_FIELDS <= set(message) <= MESSAGE_FIELDS | {"text", "event", "data"}
        assert message["visibility"] == "All" and message["streamId"] == message["index"]
        match = INDEX.match(message["index"])
        assert match and UTC.match(message["utcTime"])
        ms = int(match.group(1))
        assert message["utcTime"] == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
            ".%03dZ" % (ms % 1000)


def test_no_greeting_and_a_nameless_customer(clock: FakeClock) -> None:
    client = TestClient(app_for(ChatServer(long_poll=0, greeting=False, clock=clock)))
    session = start(client, {"endpoint": "customer-support"})
    messages = poll(client, session)["messages"]
    assert [m["type"] for m in messages] == ["ParticipantJoined", "ParticipantJoined", "System"]
    assert messages[0]["from"]["nickname"] == "Customer"


def test_start_with_json_bodies(client: TestClient) -> None:
    nested = client.post(D, json={"operationId": "op-1", "data": {"firstName": "Bo", "userData": {"k": "v"}}},
                         headers=KEY)
    assert nested.status_code == 200 and nested.json()["operationId"] == "op-1"
    flat = client.post(D, json={"firstName": "Cy"}, headers=KEY)
    assert flat.status_code == 200
    for body, name in ((nested, "Bo"), (flat, "Cy")):
        session = body.json()["data"]
        assert poll(client, session)["messages"][0]["from"]["nickname"] == name
    empty = client.post(D, headers=KEY)
    assert empty.status_code == 200 and "clientToken" in empty.json()["data"]


def test_a_new_operation_id_when_none_is_usable(client: TestClient) -> None:
    for params in ({}, {"operationId": "x" * 200}, {"operationId": "has space"}):
        body = client.post(D, params=params, headers=KEY).json()
        uuid.UUID(body["operationId"])
    # GET echoes the query's
    session = start(client)
    response = client.get(f"{D}/{session['sessionId']}/messages", params={"operationId": "abc-1"},
                          headers={**KEY, "x-nexus-client-key": session["clientToken"]})
    assert response.json()["operationId"] == "abc-1"


def test_start_for_another_endpoint_is_refused(client: TestClient) -> None:
    response = form_post(client, "", {**START_FORM, "endpoint": "sales"})
    assert response.status_code == 400
    assert response.json()["status"]["code"] == "BAD_REQUEST" and "data[endpoint]" in response.json()["status"][
        "message"]


# -- send, poll, agent replies ----------------------------------------------------------------------------------


def test_customer_text_comes_back_in_a_poll_and_the_agent_answers_later(client: TestClient,
                                                                      clock: FakeClock) -> None:
    session = start(client)
    poll(client, session)
    sent = send(client, session, "hello there")
    assert sent.status_code == 200 and sent.json()["data"] == {"chatEnded": False}
    mine = poll(client, session)["messages"]
    assert texts(mine) == ["hello there"]
    assert mine[0]["from"]["type"] == "Customer" and mine[0]["from"]["participantId"] == session["participantId"]
    assert poll(client, session)["messages"] == []  # not yet: reply_delay is 2 s
    clock.now += 2.0
    reply = poll(client, session)["messages"]
    assert texts(reply) == ["Agent (simulated): you said \u201chello there\u201d"]
    assert reply[0]["from"]["type"] == "Agent"
    assert poll(client, session)["messages"] == []


def test_send_with_a_json_body(client: TestClient) -> None:
    session = start(client)
    poll(client, session)
    headers = {**KEY, "x-nexus-client-key": session["clientToken"]}
    response = client.post(f"{D}/{session['sessionId']}/messages",
                           json={"operationId": "o", "data": {"type": "Text", "text": "json!"}}, headers=headers)
    assert response.status_code == 200 and response.json()["operationId"] == "o"
    assert texts(poll(client, session)["messages"]) == ["json!"]


def test_typing_is_accepted_with_empty_text_and_not_stored(client: TestClient, clock: FakeClock) -> None:
    session = start(client)
    before = poll(client, session)["messages"]
    for kind in ("TypingStarted", "TypingStopped"):
        response = send(client, session, "", kind)
        assert response.status_code == 200 and response.json()["data"] == {"chatEnded": False}
    clock.now += 10
    assert poll(client, session)["messages"] == []
    assert len(poll(client, session, count="100")["messages"]) == len(before)


def test_indexes_strictly_increase_even_within_one_millisecond(client: TestClient,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_chat.time, "time", lambda: 1_700_000_000.0)
    sessions = [start(client) for _ in range(3)]
    for session in sessions:
        send(client, session, "one")
        send(client, session, "two")
    everything = [m for s in sessions for m in poll(client, s, count="50")["messages"]]
    stamps = sorted(int(INDEX.match(m["index"]).group(1)) for m in everything)
    assert len(set(stamps)) == len(stamps) == 18
    assert stamps[0] >= 1_700_000_000_000
    for session in sessions:
        own = [int(m["index"][:-2]) for m in poll(client, session, count="50")["messages"]]
        assert own == sorted(own)


# -- restore and tokens -----------------------------------------------------------------------------------------


def test_restore_gives_a_fresh_token_for_the_same_session(client: TestClient) -> None:
    first = start(client)
    response = restore(client, first["clientToken"])
    assert response.status_code == 200
    second = response.json()["data"]
    assert second["sessionId"] == first["sessionId"] and second["participantId"] == first["participantId"]
    assert second["clientToken"] != first["clientToken"]
    assert jwt_part(second["clientToken"], 1)["jti"] != jwt_part(first["clientToken"], 1)["jti"]
    # Both tokens stay valid, and a restore from the restored token works too.
    assert restore(client, second["clientToken"]).status_code == 200
    assert restore(client, first["clientToken"]).status_code == 200


def test_restore_with_a_json_body(client: TestClient) -> None:
    first = start(client)
    headers = {**KEY, "x-nexus-client-key": first["clientToken"]}
    response = client.post(D, json={"data": {"endpoint": "customer-support", "userData": {}}}, headers=headers)
    assert response.status_code == 200 and response.json()["data"]["sessionId"] == first["sessionId"]


def test_two_tokens_of_one_session_each_get_every_message(client: TestClient, clock: FakeClock) -> None:
    page_a = start(client)
    page_b = {**page_a, "clientToken": restore(client, page_a["clientToken"]).json()["data"]["clientToken"]}
    assert len(poll(client, page_a)["messages"]) == 4
    assert len(poll(client, page_b)["messages"]) == 4  # a fresh token's cursor starts at the beginning
    send(client, page_a, "from a")
    assert texts(poll(client, page_a)["messages"]) == ["from a"]
    send(client, page_b, "from b")
    clock.now += 2
    expected = ["from b", "Agent (simulated): you said \u201cfrom a\u201d",
                "Agent (simulated): you said \u201cfrom b\u201d"]
    assert texts(poll(client, page_b)["messages"]) == ["from a", *expected]
    assert texts(poll(client, page_a)["messages"]) == expected
    assert poll(client, page_a)["messages"] == poll(client, page_b)["messages"] == []


def test_restore_of_an_ended_forged_or_unknown_token_is_401(client: TestClient) -> None:
    session = start(client)
    header, payload, signature = session["clientToken"].split(".")
    other = ChatServer(long_poll=0).start("Eve")["clientToken"]  # well formed, another server's secret
    forged_payload = base64.urlsafe_b64encode(json.dumps(
        {"sessionId": session["sessionId"], "participantId": session["participantId"], "jti": "x", "iat": 1}
    ).encode()).rstrip(b"=").decode()
    for token in ("garbage", "a.b.c", f"{header}.{forged_payload}.{signature}", f"{header}.{payload}.{'A' * 43}",
                  other, "x" * 5000):
        response = restore(client, token)
        assert response.status_code == 401, token
        assert response.json()["status"]["code"] == "INVALID_SESSION"
    assert leave(client, session).status_code == 200
    ended = restore(client, session["clientToken"])
    assert ended.status_code == 401 and ended.json()["status"]["code"] == "INVALID_SESSION"


def test_start_with_a_stale_token_and_the_pre_chat_form_starts_a_new_chat(client: TestClient) -> None:
    # The widget keeps sending the page's token of the last chat when the customer starts the next one.
    old = start(client)
    leave(client, old)
    response = form_post(client, "", START_FORM, token=old["clientToken"])
    assert response.status_code == 200
    assert response.json()["data"]["sessionId"] != old["sessionId"]
    live = start(client)
    fresh = form_post(client, "", START_FORM, token=live["clientToken"]).json()["data"]
    assert fresh["sessionId"] not in (live["sessionId"], old["sessionId"])


# -- count and index --------------------------------------------------------------------------------------------


def test_count_gives_the_latest_n_oldest_first_and_moves_the_cursor(client: TestClient) -> None:
    session = start(client)
    for text in ("one", "two", "three"):
        send(client, session, text)
    latest = poll(client, session, count="2")
    assert texts(latest["messages"]) == ["two", "three"] and latest["chatEnded"] is False
    assert poll(client, session)["messages"] == []  # the cursor moved to the newest
    assert len(poll(client, session, count="10000")["messages"]) == 7


def test_index_and_count_give_the_page_at_or_before_the_index(client: TestClient) -> None:
    session = start(client)
    for text in ("one", "two", "three"):
        send(client, session, text)
    everything = poll(client, session, count="20")["messages"]
    two = everything[5]
    assert texts(poll(client, session, index=two["index"], count="2")["messages"]) == ["one", "two"]
    assert len(poll(client, session, index=two["index"], count="20")["messages"]) == 6
    # Exactly the first message: the widget reads it as "no more".
    first = everything[0]
    assert poll(client, session, index=first["index"], count="20")["messages"] == [first]
    # The widget's dash-less index form works too.
    bare = two["index"].replace("-", "")
    assert texts(poll(client, session, index=bare, count="2")["messages"]) == ["one", "two"]


def test_index_alone_gives_the_messages_after_it(client: TestClient) -> None:
    session = start(client)
    everything = poll(client, session)["messages"]
    send(client, session, "later")
    after = poll(client, session, index=everything[-1]["index"])
    assert texts(after["messages"]) == ["later"]
    assert poll(client, session)["messages"] == []  # the cursor moved past them
    assert poll(client, session, index=everything[1]["index"].replace("-", ""))["messages"][-1]["text"] == "later"
    assert poll(client, session, index="9999999999999-0")["messages"] == []


@pytest.mark.parametrize(("params", "field"), [
    ({"index": ""}, "index"), ({"index": "abc"}, "index"), ({"index": "1-2-3"}, "index"),
    ({"index": "1" * 40 + "-0"}, "index"), ({"index": "5"}, "index"), ({"count": "0"}, "count"),
    ({"count": "-3"}, "count"), ({"count": "many"}, "count"), ({"count": "9" * 20}, "count"),
    ({"index": "1700000000000-0", "count": "x"}, "count"),
])
def test_bad_index_or_count_is_400_naming_it(client: TestClient, params: dict[str, str], field: str) -> None:
    session = start(client)
    response = get(client, session["sessionId"], session["clientToken"], **params)
    assert response.status_code == 400
    status = response.json()["status"]
    assert status["code"] == "BAD_REQUEST" and status["message"].startswith(field)


# -- sessions that are unknown, not yours, or ended -------------------------------------------------------------


def test_a_session_route_needs_a_token_of_that_session(client: TestClient) -> None:
    mine, theirs = start(client), start(client)
    sid = mine["sessionId"]
    header, payload, _ = mine["clientToken"].split(".")
    cases = [
        (sid, None), (sid, theirs["clientToken"]), (sid, "garbage"), (sid, f"{header}.{payload}.AAAA"),
        (str(uuid.uuid4()), mine["clientToken"]), ("not-a-uuid", mine["clientToken"]),
    ]
    for session_id, token in cases:
        target = {"sessionId": session_id, "clientToken": token or "", "participantId": mine["participantId"]}
        responses = [
            get(client, session_id, token),
            get(client, session_id, token, count="20"),
            form_post(client, f"/{session_id}/messages", {"type": "Text", "text": "x"}, token=token),
            form_post(client, f"/{session_id}/userdata", {"k": "v"}, token=token, method="PUT"),
            leave(client, target) if token else client.request(
                "DELETE", f"{D}/{session_id}/participants/{mine['participantId']}", headers=KEY),
        ]
        for response in responses:
            assert response.status_code == 404, (session_id, token, response.request.url)
            body = response.json()
            assert body["status"]["code"] == "INVALID_SESSION" and body["status"]["message"]
            assert body["data"] == {} and body["referenceId"]
    assert len(poll(client, mine, count="50")["messages"]) == 4  # nothing stored


def test_leaving_with_another_participant_id_is_404(client: TestClient, chat: ChatServer) -> None:
    session = start(client)
    response = leave(client, {**session, "participantId": str(uuid.uuid4())})
    assert response.status_code == 404 and response.json()["status"]["code"] == "INVALID_SESSION"
    assert not chat.is_ended(session["sessionId"])


def test_customer_end(client: TestClient, chat: ChatServer, clock: FakeClock) -> None:
    session = start(client)
    poll(client, session)
    send(client, session, "bye")
    response = leave(client, session)
    assert response.status_code == 200 and response.json()["data"] == {"chatEnded": True}
    assert chat.is_ended(session["sessionId"])
    clock.now += 10  # the pending agent reply is dropped
    rest = poll(client, session)
    assert rest["chatEnded"] is True
    assert [(m["type"], m["from"]["type"]) for m in rest["messages"]] == [("Text", "Customer"),
                                                                         ("ParticipantLeft", "Customer")]
    assert poll(client, session) == {"messages": [], "chatEnded": True}
    # Sending to an ended chat: 200, chatEnded, nothing stored; leaving again changes nothing.
    again = send(client, session, "anyone?")
    assert again.status_code == 200 and again.json()["data"] == {"chatEnded": True}
    assert leave(client, session).status_code == 200
    assert len(chat.messages(session["sessionId"])) == 6


def test_user_data_put_merges(client: TestClient, chat: ChatServer) -> None:
    session = start(client, {"firstName": "A", "userData": {"a": "1", "b": "2"}})
    response = form_post(client, f"/{session['sessionId']}/userdata", {"b": "3", "c": {"d": "4"}},
                         token=session["clientToken"], method="PUT")
    assert response.status_code == 200 and response.json()["data"] == {}
    assert chat.user_data(session["sessionId"]) == {"a": "1", "b": "3", "c": {"d": "4"}}


# -- the agent control route and the Python API -----------------------------------------------------------------


def test_control_route_plays_the_agent_without_an_api_key(client: TestClient, chat: ChatServer) -> None:
    session = start(client)
    poll(client, session)
    response = client.post(f"{D}/{session['sessionId']}/agent",
                           json={"text": "Anything else?", "interactionState": "Finalizing"})
    assert response.status_code == 200
    text, state = response.json()["data"]["messages"]
    assert text["type"] == "Text" and text["from"]["type"] == "Agent" and text["text"] == "Anything else?"
    assert state["type"] == "System" and state["data"] == {"interactionState": "Finalizing"}
    assert poll(client, session)["messages"] == [text, state]
    ended = client.post(f"{D}/{session['sessionId']}/agent", json={"end": True})
    (left,) = ended.json()["data"]["messages"]
    assert left["type"] == "ParticipantLeft" and left["from"]["type"] == "Agent"
    assert poll(client, session) == {"messages": [left], "chatEnded": True}
    assert chat.is_ended(session["sessionId"])
    late = client.post(f"{D}/{session['sessionId']}/agent", json={"text": "hello?"})
    assert late.status_code == 409 and late.json()["status"]["code"] == "CHAT_ENDED"


@pytest.mark.parametrize(("content", "word"), [
    (b"{}", "text"), (b'{"interactionState": "Sleeping"}', "interactionState"),
    (b'{"interactionState": 3}', "interactionState"), (b'{"text": "  "}', "text"), (b'{"text": 5}', "text"),
    (b'{"end": "soon"}', "end"), (b"{nope", "JSON"), (b"[1]", "JSON"),
    (json.dumps({"text": "x" * 4001}).encode(), "text"),
])
def test_control_route_bad_input_is_400(client: TestClient, content: bytes, word: str) -> None:
    session = start(client)
    response = client.post(f"{D}/{session['sessionId']}/agent", content=content,
                           headers={"content-type": "application/json"})
    assert response.status_code == 400, content
    assert response.json()["status"]["code"] == "BAD_REQUEST" and word in response.json()["status"]["message"]


def test_control_route_of_an_unknown_session_is_404(client: TestClient) -> None:
    response = client.post(f"{D}/{uuid.uuid4()}/agent", json={"text": "hi"})
    assert response.status_code == 404 and response.json()["status"]["code"] == "INVALID_SESSION"


def test_python_api(chat: ChatServer, clock: FakeClock) -> None:
    started = chat.start("Dee", user_data={"k": "v"})
    sid = started["sessionId"]
    assert chat.session_ids() == [sid] and chat.user_data(sid) == {"k": "v"}
    assert [m["type"] for m in chat.messages(sid)] == ["ParticipantJoined", "ParticipantJoined", "System", "Text"]
    added = chat.agent(sid, text="hi", state="Completed")
    assert [m["type"] for m in added] == ["Text", "System"] and chat.messages(sid)[-2:] == added
    added[0]["text"] = "changed"  # copies, not the server's own
    assert chat.messages(sid)[-2]["text"] == "hi"
    restored = chat.restore(started["clientToken"])
    assert restored["sessionId"] == sid and restored["clientToken"] != started["clientToken"]
    assert not chat.is_ended(sid)
    chat.agent(sid, end=True)
    assert chat.is_ended(sid) and chat.messages(sid)[-1]["type"] == "ParticipantLeft"
    with pytest.raises(demo_chat.ChatError, match="INVALID_SESSION|live chat"):
        chat.restore(started["clientToken"])
    with pytest.raises(demo_chat.ChatError) as error:
        chat.messages("nope")
    assert error.value.http_status == 404
    with pytest.raises(demo_chat.ChatError):
        chat.agent(chat.start()["sessionId"], state="Sleeping")


# -- auth, CORS, routes -----------------------------------------------------------------------------------------


def test_every_widget_request_needs_the_api_key(client: TestClient, chat: ChatServer) -> None:
    session = start(client)
    sid, token = session["sessionId"], session["clientToken"]
    for key in (None, "", "wrong", CHAT_API_KEY.upper()):
        headers = {"x-nexus-client-key": token, "content-type": FORM, **({"x-api-key": key} if key is not None else {})}
        requests = [("POST", D), ("GET", f"{D}/{sid}/messages?operationId=q1"), ("POST", f"{D}/{sid}/messages"),
                    ("PUT", f"{D}/{sid}/userdata"), ("DELETE", f"{D}/{sid}/participants/{session['participantId']}"),
                    ("POST", f"{D}/{sid}/images")]
        for method, url in requests:
            response = client.request(method, url, headers=headers, content=b"data%5Btype%5D=Text&data%5Btext%5D=x")
            assert response.status_code == 401, (method, url)
            body = response.json()
            assert body["status"]["code"] == "UNAUTHORIZED" and "x-api-key" in body["status"]["message"]
            assert response.headers["access-control-allow-origin"] == "*"
    assert client.get(f"{D}/{sid}/messages?operationId=q1", headers={"x-nexus-client-key": token}).json()[
        "operationId"] == "q1"
    assert len(poll(client, session)["messages"]) == 4 and not chat.is_ended(sid)


def test_cors_preflight_from_any_origin(client: TestClient) -> None:
    for path in ("", "/abc/messages", "/abc/participants/def", "/abc/userdata"):
        response = client.options(D + path, headers={
            "Origin": "https://elsewhere.test", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key,x-nexus-client-key,content-type"})
        assert response.status_code == 204, path
        assert response.headers["access-control-allow-origin"] == "*"
        assert set(response.headers["access-control-allow-methods"].replace(" ", "").split(",")) == {
            "GET", "POST", "PUT", "DELETE", "OPTIONS"}
        assert set(response.headers["access-control-allow-headers"].replace(" ", "").split(",")) == {
            "x-api-key", "x-nexus-client-key", "content-type"}
        assert "access-control-allow-credentials" not in response.headers
    answer = client.post(D, headers={**KEY, "Origin": "https://elsewhere.test"})
    assert answer.headers["access-control-allow-origin"] == "*"


def test_other_routes_answer_json(client: TestClient) -> None:
    session = start(client)
    headers = {**KEY, "x-nexus-client-key": session["clientToken"]}
    images = client.post(f"{D}/{session['sessionId']}/images", files={"file": ("a.png", b"x")}, headers=headers)
    assert images.status_code == 501 and images.json()["status"]["code"] == "NOT_IMPLEMENTED"
    wrong_method = client.put(f"{D}/{session['sessionId']}/messages", headers=headers)
    assert wrong_method.status_code == 405 and wrong_method.json()["status"]["code"] == "METHOD_NOT_ALLOWED"
    assert client.get(D, headers=headers).status_code == 405
    unknown = client.get(f"{D}/a/b/c/d", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["status"]["code"] == "NOT_FOUND"


# -- form bodies ------------------------------------------------------------------------------------------------


def test_parse_form_nests_brackets_as_jquery_writes_them() -> None:
    body = jquery_param({"operationId": "o", "data": {"type": "Text", "text": "a+b c", "userData": {
        "_genesys_url": "https://x.test/?a=1&b=[2]", "list": ["p", "q"], "rows": [{"n": "1"}, {"n": "2"}]}}})
    assert parse_form(body) == {"operationId": "o", "data": {"type": "Text", "text": "a+b c", "userData": {
        "_genesys_url": "https://x.test/?a=1&b=[2]", "list": ["p", "q"], "rows": {"0": {"n": "1"}, "1": {"n": "2"}}}}}
    assert parse_form("a=1&a=2&b=") == {"a": "2", "b": ""}


@pytest.mark.parametrize("body", [
    "data[type]=a&data[type][x]=b", "data[type][x]=b&data[type]=a", "a[]=1&a=2", "a=2&a[]=1", "a[][b]=1",
    "[x]=1", "a]=1", "a[b=1", "%ff=1", "a=%ff%fe", "&".join(f"f{n}=1" for n in range(500)),
    "a" + "[b]" * 10 + "=1",
])
def test_bad_forms_are_400(client: TestClient, body: str) -> None:
    response = client.post(D, content=body.encode(), headers={**KEY, "content-type": FORM})
    assert response.status_code == 400, body
    assert response.json()["status"]["code"] == "BAD_REQUEST"


# -- limits and bad input ---------------------------------------------------------------------------------------


def test_limits_on_body_size_and_text_length(client: TestClient) -> None:
    session = start(client)
    too_big = send(client, session, "x" * (demo_chat.MAX_BODY + 10))
    assert too_big.status_code == 413 and too_big.json()["status"]["code"] == "PAYLOAD_TOO_LARGE"
    too_long = send(client, session, "x" * (demo_chat.MAX_TEXT + 1))
    assert too_long.status_code == 400 and "data[text]" in too_long.json()["status"]["message"]
    assert send(client, session, "x" * demo_chat.MAX_TEXT).status_code == 200
    assert form_post(client, "", {**START_FORM, "firstName": "n" * 300}).status_code == 400
    lying = client.post(D, headers={**KEY, "content-length": "999999"}, content=b"")
    assert lying.status_code in (400, 413)


def test_limit_on_sessions_drops_ended_ones_first(client: TestClient, chat: ChatServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_chat, "MAX_SESSIONS", 3)
    first, second, third = start(client), start(client), start(client)
    leave(client, second)
    fourth = start(client)
    assert chat.session_ids() == [first["sessionId"], third["sessionId"], fourth["sessionId"]]
    start(client)
    assert first["sessionId"] not in chat.session_ids() and len(chat.session_ids()) == 3
    assert get(client, first["sessionId"], first["clientToken"]).status_code == 404
    assert restore(client, first["clientToken"]).status_code == 401


def test_limit_on_messages(client: TestClient, chat: ChatServer, clock: FakeClock,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_chat, "MAX_MESSAGES", 8)
    session = start(client)
    for n in range(4):
        assert send(client, session, f"m{n}").status_code == 200
    full = send(client, session, "one more")
    assert full.status_code == 429 and full.json()["status"]["code"] == "TOO_MANY_MESSAGES"
    clock.now += 10  # the agent's replies do not overflow either
    assert len(chat.messages(session["sessionId"])) == 8
    assert client.post(f"{D}/{session['sessionId']}/agent", json={"text": "x"}).status_code == 429
    assert leave(client, session).status_code == 200  # ending always works
    assert chat.messages(session["sessionId"])[-1]["type"] == "ParticipantLeft"


def test_limit_on_poll_cursors_per_session(client: TestClient, chat: ChatServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_chat, "MAX_TOKENS", 2)
    first = start(client)
    poll(client, first)
    for _ in range(3):
        restore(client, first["clientToken"])
    # Its cursor was dropped: the token still works, from the beginning again.
    assert len(poll(client, first)["messages"]) == 4


GARBAGE = [b"", b"{", b"[]", b"null", b'"s"', b"\xff\xfe\x00", b"%", b"=", b"&&&", b"data=x", b"data[type]=Nope",
           b"data[type][a]=1", b"data[text][]=1", b"data[userData]=x", b"data[firstName][x]=1", b"[" * 5000,
           b'{"data": 5}', b'{"data": {"type": ["Text"]}}', b'{"data": {"text": {"a": 1}}}',
           b'{"data": {"userData": [1]}}', b'{"data": {"firstName": 7}}', b"\x00" * 100]


@pytest.mark.parametrize("content_type", [FORM, "application/json", "text/plain", None])
def test_bad_input_never_500(client: TestClient, chat: ChatServer, content_type: str | None) -> None:
    session = start(client)
    sid, pid = session["sessionId"], session["participantId"]
    headers = {**KEY, "x-nexus-client-key": session["clientToken"], **({"content-type": content_type}
                                                                       if content_type else {})}
    targets = [("POST", D), ("POST", f"{D}/{sid}/messages"), ("PUT", f"{D}/{sid}/userdata"),
               ("POST", f"{D}/{sid}/agent"), ("DELETE", f"{D}/{sid}/participants/{pid}x")]
    for body in GARBAGE:
        for method, url in targets:
            response = client.request(method, url, content=body, headers=headers)
            assert response.status_code < 500, (method, url, body[:20])
            assert response.json()["status"]["code"], (method, url, body[:20])
    for params in ({"index": "\x00"}, {"count": "\u0661"}, {"index": "-0"}, {"index": "1-0", "count": "1" * 30}):
        assert get(client, sid, session["clientToken"], **params).status_code == 400
    assert not chat.is_ended(sid)


# -- the held long poll -----------------------------------------------------------------------------------------


def test_held_poll_returns_the_agent_reply_when_it_is_due() -> None:
    chat = ChatServer(reply_delay=0.2, long_poll=2.0)
    client = TestClient(app_for(chat))
    session = start(client)
    poll(client, session)
    send(client, session, "hi")
    assert texts(poll(client, session)["messages"]) == ["hi"]
    started = time.monotonic()
    reply = poll(client, session)["messages"]
    assert [m["from"]["type"] for m in reply] == ["Agent"]
    assert 0.1 < time.monotonic() - started < 1.5


def test_held_poll_waits_up_to_long_poll_and_the_hold_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    chat = ChatServer(long_poll=0.4)
    client = TestClient(app_for(chat))
    session = start(client)
    poll(client, session)
    started = time.monotonic()
    assert poll(client, session) == {"messages": [], "chatEnded": False}
    assert 0.35 <= time.monotonic() - started < 2
    assert chat.held_polls == 0
    monkeypatch.setattr(demo_chat, "MAX_HELD_POLLS", 0)
    started = time.monotonic()
    assert poll(client, session)["messages"] == []
    assert time.monotonic() - started < 0.3  # answered at once, not held


@pytest.mark.anyio
async def test_concurrent_held_polls_of_two_tokens_both_get_the_agents_message() -> None:
    chat = ChatServer(long_poll=3.0)
    transport = httpx.ASGITransport(app=app_for(chat))
    async with httpx.AsyncClient(transport=transport, base_url="https://site.test") as http:
        first = chat.start("Ann")
        second = chat.restore(first["clientToken"])
        results: dict[str, list[str]] = {}
        held: list[int] = []

        async def page(name: str, token: str) -> None:
            url = f"{D}/{first['sessionId']}/messages"
            headers = {**KEY, "x-nexus-client-key": token}
            await http.get(url, params={"count": "20", "operationId": op()}, headers=headers)
            answer = await http.get(url, params={"operationId": op()}, headers=headers)
            results[name] = texts(answer.json()["data"]["messages"])

        async def agent() -> None:
            await anyio.sleep(0.3)
            held.append(chat.held_polls)
            chat.agent(first["sessionId"], text="to both")

        started = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(page, "a", first["clientToken"])
            group.start_soon(page, "b", second["clientToken"])
            group.start_soon(agent)
        assert results == {"a": ["to both"], "b": ["to both"]}
        assert held == [2] and chat.held_polls == 0
        assert time.monotonic() - started < 2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
