"""strata-server against real clients, on loopback ports the test picks (--port 0).

Usage: server_test.py BIN_DIR DATA_DIR SMOLLM2_GGUF WORK_DIR

SmolLM2 (chat template) serves the OpenAI and Ollama chat tests, the identity with strata-chat,
the faults and slot files; stories260K (no template, head dim 8, f16 KV) serves /v1/completions,
the raw SSE/NDJSON framing with curl and the concurrency tests. Each check is a function; the
script runs them all, prints one line each with its time, and exits 1 when one failed.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

import ollama
import openai
from prometheus_client.parser import text_string_to_metric_families

BIN, DATA, SMOL, WORK = sys.argv[1:5]
STORIES = os.path.join(DATA, "stories260K.gguf")
KEY = "test-key-123"
SMOL_NAME = os.path.basename(SMOL)[: -len(".gguf")]


class Server:
    """A strata-server process on a free port; its stderr is kept in self.log."""

    def __init__(self, *args, model=SMOL):
        cmd = [os.path.join(BIN, "strata-server"), "-m", model, "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.log = []
        self.port = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        ready.wait(120)
        if self.port is None:
            self.proc.kill()
            raise AssertionError("server did not start: " + "".join(self.log))

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self, sig=signal.SIGTERM, timeout=120):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.reader.join(5)
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def call(srv, method, path, body=None, key=KEY, headers=None, timeout=120):
    """(status, headers, body bytes); connects again when the listen backlog refuses."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    h.update(headers or {})
    for attempt in range(50):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        except (ConnectionRefusedError, ConnectionResetError):
            time.sleep(0.05 * (attempt + 1))
        finally:
            conn.close()
    raise AssertionError("could not connect to %s" % path)


def call_json(srv, method, path, body=None, **kw):
    status, _, raw = call(srv, method, path, body, **kw)
    return status, json.loads(raw)


def chat_body(content, max_tokens=12, **extra):
    return {"model": SMOL_NAME, "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens, "temperature": 0, **extra}


def metric(srv, name):
    _, _, raw = call(srv, "GET", "/metrics")
    for fam in text_string_to_metric_families(raw.decode()):
        for s in fam.samples:
            if s.name == name:
                return s.value
    raise AssertionError("no metric " + name)


def fresh(srv):
    """Empties every slot's cache. A prompt whose prefix is reused is computed in other batches
    than a fresh one (the matmul's summation order depends on the batch), so greedy answers
    compared with each other start from empty caches."""
    _, slots = call_json(srv, "GET", "/slots")
    for s in slots:
        status, r = call_json(srv, "POST", "/slots/%d?action=erase" % s["id"])
        assert status == 200, r


def wait_idle(srv, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        _, slots = call_json(srv, "GET", "/slots")
        if all(s["state"] == "idle" for s in slots):
            return slots
        time.sleep(0.05)
    raise AssertionError("slots still busy after %d s" % timeout)


# ---- SmolLM2: OpenAI ------------------------------------------------------------------------

def openai_client(srv):
    return openai.OpenAI(base_url=srv.url("/v1"), api_key=KEY, max_retries=0,
                         _strict_response_validation=True)


def test_openai_chat(srv):
    c = openai_client(srv)
    t0 = time.time()
    fresh(srv)
    r = c.chat.completions.create(model=SMOL_NAME, max_tokens=12, temperature=0,
                                  messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert r.id.startswith("chatcmpl-"), r.id
    assert r.object == "chat.completion"
    assert abs(r.created - t0) < 120, (r.created, t0)
    assert r.model == SMOL_NAME
    ch = r.choices[0]
    assert ch.finish_reason in ("stop", "length"), ch.finish_reason
    assert ch.message.role == "assistant" and ch.message.content
    u = r.usage
    assert u.prompt_tokens > 5 and 0 < u.completion_tokens <= 12
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    if ch.finish_reason == "length":
        assert u.completion_tokens == 12
    # The same question as content parts: the same prompt, the same greedy answer.
    fresh(srv)
    r2 = c.chat.completions.create(model=SMOL_NAME, max_tokens=12, temperature=0, messages=[
        {"role": "user", "content": [{"type": "text", "text": "What is the capital"},
                                     {"type": "text", "text": " of France?"}]}])
    assert r2.choices[0].message.content == ch.message.content
    assert r2.usage.prompt_tokens == u.prompt_tokens
    assert r2.id != r.id


def test_openai_chat_stream(srv):
    c = openai_client(srv)
    msgs = [{"role": "user", "content": "Name three colors."}]
    fresh(srv)
    full = c.chat.completions.create(model=SMOL_NAME, max_tokens=10, temperature=0, messages=msgs)
    fresh(srv)
    chunks = list(c.chat.completions.create(model=SMOL_NAME, max_tokens=10, temperature=0,
                                            messages=msgs, stream=True,
                                            stream_options={"include_usage": True}))
    assert len({k.id for k in chunks}) == 1
    assert all(k.object == "chat.completion.chunk" for k in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(k.choices[0].delta.content or "" for k in chunks if k.choices)
    assert text == full.choices[0].message.content, (text, full.choices[0].message.content)
    finals = [k.choices[0].finish_reason for k in chunks if k.choices and k.choices[0].finish_reason]
    assert finals == [full.choices[0].finish_reason], finals
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_identity_with_strata_chat(srv):
    prompt = "Give me one tip for learning to cook."
    out = subprocess.run([os.path.join(BIN, "strata-chat"), "-m", SMOL, "-c", "1024", "--temp", "0",
                          "-n", "16", "-ctk", "q8_0", "-ctv", "turbo3", "-p", prompt],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    expected = out[:-1] if out.endswith("\n") else out
    fresh(srv)
    status, r = call_json(srv, "POST", "/v1/chat/completions", chat_body(prompt, 16))
    assert status == 200, r
    assert r["choices"][0]["message"]["content"] == expected, (r, expected)


def test_special_tokens_are_text(srv):
    _, a = call_json(srv, "POST", "/v1/chat/completions", chat_body("a", 1))
    _, b = call_json(srv, "POST", "/v1/chat/completions", chat_body("<|im_start|>", 1))
    # As a special token the marker would be one id; as text it is several.
    assert b["usage"]["prompt_tokens"] >= a["usage"]["prompt_tokens"] + 3, (a["usage"], b["usage"])


def test_stop_string_spanning_tokens(srv):
    c = openai_client(srv)
    msgs = [{"role": "user", "content": "Write a sentence about the sea."}]
    fresh(srv)
    pieces = [k.choices[0].delta.content or "" for k in c.chat.completions.create(
        model=SMOL_NAME, max_tokens=16, temperature=0, messages=msgs, stream=True) if k.choices]
    pieces = [p for p in pieces if p]
    # A stop string made of the end of one piece and the start of the next.
    i = next(i for i in range(1, len(pieces) - 1) if len(pieces[i]) >= 2 and len(pieces[i + 1]) >= 2)
    stop = pieces[i][-2:] + pieces[i + 1][:2]
    full = "".join(pieces)
    fresh(srv)
    r = c.chat.completions.create(model=SMOL_NAME, max_tokens=16, temperature=0, messages=msgs,
                                  stop=[stop])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == full[: full.index(stop)], (stop, full, r)
    fresh(srv)
    streamed = "".join(k.choices[0].delta.content or "" for k in c.chat.completions.create(
        model=SMOL_NAME, max_tokens=16, temperature=0, messages=msgs, stream=True, stop=stop)
        if k.choices)
    assert streamed == full[: full.index(stop)]


def test_kv_policy_per_request(srv):
    status, r = call_json(srv, "POST", "/v1/chat/completions",
                          chat_body("Hi", 2, kv_policy="k=q8_0;v=turbo2"))
    assert status == 200, r
    _, slots = call_json(srv, "GET", "/slots")
    assert any("turbo2" in s["kv_policy"] for s in slots), slots


def test_parallel_chat_equals_sequential(srv):
    """Both slots generating at once: each answer equals the same request run alone."""
    prompts = ["Name a fruit.", "Name a country in Europe."]

    def ask(p):
        status, r = call_json(srv, "POST", "/v1/chat/completions", chat_body(p, 12))
        assert status == 200, r
        return r["choices"][0]["message"]["content"]

    seq = []
    for p in prompts:
        fresh(srv)
        seq.append(ask(p))
    fresh(srv)
    out = [None, None]
    ts = [threading.Thread(target=lambda i=i: out.__setitem__(i, ask(prompts[i]))) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == seq, (out, seq)


def expect_error(srv, body, status, needle, path="/v1/chat/completions", key=KEY, param=None):
    got, _, raw = call(srv, "POST", path, body, key=key)
    assert got == status, (got, raw[:300])
    err = json.loads(raw)["error"]
    msg = err if isinstance(err, str) else err["message"]
    assert needle in msg, (needle, msg)
    if param is not None:
        assert err["param"] == param, err
    if path.startswith("/v1/"):
        assert set(err) == {"message", "type", "param", "code"}, err


def test_faults(srv):
    expect_error(srv, b'{"messages": [', 400, "malformed JSON")
    expect_error(srv, b'[1, 2]', 400, "JSON object")
    expect_error(srv, {"messages": "hi"}, 400, "must be an array", param="messages")
    expect_error(srv, chat_body("hi", "ten"), 400, "integer", param="max_tokens")
    expect_error(srv, chat_body("hi", 4, temperature="hot"), 400, "number", param="temperature")
    expect_error(srv, dict(chat_body("hi"), model="gpt-4"), 404, "gpt-4", param="model")
    expect_error(srv, chat_body("hi", -1), 400, "must be in", param="max_tokens")
    expect_error(srv, chat_body("hi", 10 ** 12), 400, "must be in", param="max_tokens")
    expect_error(srv, chat_body("word " * 1500), 400, "prompt too long", param="messages")
    expect_error(srv, chat_body("hi", 4, kv_policy="turbo9"), 400, "turbo9", param="kv_policy")
    expect_error(srv, chat_body("hi", 4, kv_policy="-ctk f32 -ctv f32"), 400, "allocation",
                 param="kv_policy")
    expect_error(srv, chat_body("hi", 4, n=2), 400, "'n'", param="n")
    expect_error(srv, chat_body("hi", 4, tools=[{"type": "function", "function": {"name": "f"}}]),
                 400, "'tools'", param="tools")
    expect_error(srv, chat_body("hi", 4, logprobs=True), 400, "'logprobs'")
    expect_error(srv, {"messages": [{"role": "wizard", "content": "x"}]}, 400, "wizard")
    expect_error(srv, chat_body("hi"), 401, "missing API key", key=None)
    expect_error(srv, chat_body("hi"), 401, "invalid API key", key="wrong")
    expect_error(srv, b"{}", 401, "API key", path="/api/chat", key=None)
    status, _, _ = call(srv, "GET", "/metrics", key=None)
    assert status == 401
    status, _, _ = call(srv, "GET", "/slots", key=None)
    assert status == 401
    status, _, _ = call(srv, "GET", "/health", key=None)
    assert status == 200
    big = json.dumps(chat_body("x" * (9 << 20))).encode()
    expect_error(srv, big, 413, "larger than")
    expect_error(srv, b"{oops", 400, "malformed JSON", path="/api/chat")
    expect_error(srv, {"model": "nope", "messages": []}, 404, "nope", path="/api/show")
    status, r = call_json(srv, "GET", "/no/such/path")
    assert status == 404 and "no endpoint" in r["error"]["message"]


def raw_request(srv, body):
    """Sends a POST and returns the open socket (the caller reads and closes)."""
    s = socket.create_connection(("127.0.0.1", srv.port))
    data = json.dumps(body).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
              KEY.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: " +
              str(len(data)).encode() + b"\r\n\r\n" + data)
    return s


def test_disconnect_frees_slot(srv):
    wait_idle(srv)
    n = 400
    before = metric(srv, "strata_tokens_generated_total")
    s = raw_request(srv, chat_body("Tell me a long story about a dragon.", n, stream=True))
    got = b""
    while b"data: " not in got:
        got += s.recv(4096)
    s.close()
    wait_idle(srv)
    mid = metric(srv, "strata_tokens_generated_total")
    assert mid - before < n, (before, mid)
    # A client that gives up while waiting for a non-streamed answer.
    s = raw_request(srv, chat_body("Tell me a long story about a knight.", n))
    time.sleep(1.5)
    s.close()
    wait_idle(srv)
    after = metric(srv, "strata_tokens_generated_total")
    assert after - mid < n, (mid, after)


def test_metrics_and_slots(srv):
    _, _, raw = call(srv, "GET", "/metrics")
    fams = {f.name: f for f in text_string_to_metric_families(raw.decode())}
    for name in ("strata_requests", "strata_tokens_generated", "strata_kv_cache_bytes",
                 "strata_kv_cache_bytes_total", "strata_process_resident_bytes",
                 "strata_kv_bits_per_value", "strata_generated_tokens_per_second"):
        assert name in fams, (name, sorted(fams))
    assert fams["strata_requests"].samples[0].value > 0
    assert fams["strata_process_resident_bytes"].samples[0].value > 50e6
    _, slots = call_json(srv, "GET", "/slots")
    per_slot = {s.labels["slot"]: s.value for s in fams["strata_kv_cache_bytes"].samples}
    assert per_slot == {str(s["id"]): float(s["kv_bytes"]) for s in slots}, (per_slot, slots)
    assert fams["strata_kv_cache_bytes_total"].samples[0].value == sum(per_slot.values())
    assert all(s["kv_bytes"] < s["kv_f16_bytes"] and s["n_ctx"] == 1024 for s in slots), slots


# ---- SmolLM2: Ollama ------------------------------------------------------------------------

def test_ollama(srv):
    c = ollama.Client(host=srv.url(), headers={"Authorization": "Bearer " + KEY})
    opts = {"num_predict": 8, "temperature": 0, "seed": 1, "top_k": 40, "top_p": 0.9}
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    fresh(srv)
    r = c.chat(model=SMOL_NAME, messages=msgs, options=opts, stream=False)
    assert r.done and r.done_reason in ("stop", "length"), r
    assert 0 < r.eval_count <= 8 and r.prompt_eval_count > 0
    assert r.total_duration >= r.eval_duration > 0
    text = r.message.content
    assert text
    fresh(srv)
    parts = list(c.chat(model=SMOL_NAME, messages=msgs, options=opts, stream=True))
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done
    assert parts[-1].done_reason == r.done_reason and parts[-1].eval_count == r.eval_count
    assert "".join(p.message.content for p in parts) == text
    fresh(srv)
    g = c.generate(model=SMOL_NAME, prompt="What is the capital of France?", options=opts,
                   stream=False)
    assert g.done and g.response == text, (g.response, text)
    names = [m.model for m in c.list().models]
    assert SMOL_NAME in names, names
    assert c.show(SMOL_NAME).details.format == "gguf"
    assert [m.model for m in c.ps().models] == [SMOL_NAME]
    status, v = call_json(srv, "GET", "/api/version")
    assert status == 200 and v["version"]
    status, _, body = call(srv, "GET", "/", key=None)
    assert status == 200 and body == b"Ollama is running"
    status, _, body = call(srv, "HEAD", "/", key=None)
    assert status == 200
    try:
        c.chat(model="llama3:8b", messages=msgs, stream=False)
        raise AssertionError("unknown model accepted")
    except ollama.ResponseError as e:
        assert e.status_code == 404, e
    try:
        c.chat(model=SMOL_NAME, messages=msgs, options={"num_ctx": 1 << 20}, stream=False)
        raise AssertionError("num_ctx accepted")
    except ollama.ResponseError as e:
        assert e.status_code == 400 and "num_ctx" in e.error, e


# ---- stories260K: completions, framing, concurrency -----------------------------------------

def test_completions(srv):
    c = openai.OpenAI(base_url=srv.url("/v1"), api_key="unused", max_retries=0,
                      _strict_response_validation=True)
    fresh(srv)
    r = c.completions.create(model="stories260K", prompt="Once upon a time", max_tokens=8,
                             temperature=0)
    assert r.id.startswith("cmpl-") and r.object == "text_completion"
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 8
    # The client's Completion schema wants a finish_reason in every chunk, which a stream has
    # only in its last (as OpenAI's own API sends it): the stream is read without strict checks.
    c = openai.OpenAI(base_url=srv.url("/v1"), api_key="unused", max_retries=0)
    fresh(srv)
    text = "".join(k.choices[0].text for k in c.completions.create(
        model="stories260K", prompt="Once upon a time", max_tokens=8, temperature=0, stream=True))
    assert text == r.choices[0].text
    status, body = call_json(srv, "POST", "/v1/chat/completions",
                             {"messages": [{"role": "user", "content": "hi"}]})
    assert status == 400 and "no chat template" in body["error"]["message"], body


def test_framing_with_curl(srv):
    if not shutil.which("curl"):
        print("  skipped: no curl")
        return
    out = subprocess.run(["curl", "-sN", srv.url("/v1/completions"), "-d", json.dumps(
        {"prompt": "Once upon a time", "max_tokens": 6, "temperature": 0, "stream": True})],
        capture_output=True, timeout=60, check=True).stdout.decode()
    events = out.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]", out[-200:]
    for e in events[:-2]:
        assert e.startswith("data: ") and "\n" not in e, e
        json.loads(e[len("data: "):])
    assert len(events) - 2 == 7  # 6 tokens and the finish chunk
    out = subprocess.run(["curl", "-sN", srv.url("/api/generate"), "-d", json.dumps(
        {"model": "stories260K", "prompt": "Once upon a time",
         "options": {"num_predict": 6, "temperature": 0}})],
        capture_output=True, timeout=60, check=True).stdout.decode()
    lines = out.split("\n")
    assert lines[-1] == "", out
    records = [json.loads(l) for l in lines[:-1]]
    assert [r["done"] for r in records] == [False] * 6 + [True]
    assert records[-1]["eval_count"] == 6 and records[-1]["done_reason"] == "length"


def complete(srv, prompt, n=12):
    status, r = call_json(srv, "POST", "/v1/completions",
                          {"prompt": prompt, "max_tokens": n, "temperature": 0})
    assert status == 200, r
    return r["choices"][0]["text"]


def test_parallel_equals_sequential(srv):
    prompts = ["Once upon a time", "The cat sat", "Tim and Sue went", "A little bird"]
    seq = []
    for p in prompts:
        fresh(srv)
        seq.append(complete(srv, p))
    fresh(srv)
    out = [None] * 4
    ts = [threading.Thread(target=lambda i=i: out.__setitem__(i, complete(srv, prompts[i])))
          for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == seq, (out, seq)


def test_64_connections(srv):
    out = [None] * 64
    ts = [threading.Thread(target=lambda i=i: out.__setitem__(i, complete(srv, "Once upon a time", 4)))
          for i in range(64)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(o == out[0] for o in out), set(out)


# ---- queue, SIGTERM, slot files (servers of their own) --------------------------------------

def test_queue_full_and_sigterm():
    with Server("-np", "1", "--queue", "1", "-c", "512", "-t", "1") as srv:
        a = raw_request(srv, dict(chat_body("Tell me about the moon.", 40, stream=True)))
        got = b""
        while b"data: " not in got:
            got += a.recv(4096)
        result = {}
        b = threading.Thread(target=lambda: result.setdefault(
            "b", call_json(srv, "POST", "/v1/chat/completions", chat_body("Hi", 4))))
        b.start()
        deadline = time.time() + 30
        while metric(srv, "strata_requests_queued") < 1:
            assert time.time() < deadline
            time.sleep(0.02)
        status, r = call_json(srv, "POST", "/v1/chat/completions", chat_body("Hi", 4))
        assert status == 503 and r["error"]["code"] == "queue_full", r
        # SIGTERM now: the streamed answer and the queued one both complete.
        srv.proc.send_signal(signal.SIGTERM)
        a.settimeout(60)
        while not got.endswith(b"data: [DONE]\n\n0\r\n\r\n") and b"[DONE]" not in got[-40:]:
            chunk = a.recv(65536)
            if not chunk:
                break
            got += chunk
        a.close()
        assert b"data: [DONE]" in got and b'"finish_reason":"length"' in got, got[-300:]
        b.join(60)
        assert result["b"][0] == 200 and result["b"][1]["choices"][0]["message"]["content"]
        assert srv.stop() == 0, "".join(srv.log)


def test_flags():
    # -c auto in a budget that holds the weights but no cache: refused with the numbers.
    r = subprocess.run([os.path.join(BIN, "strata-server"), "-m", SMOL, "-c", "auto", "--mem",
                        "0.05", "--port", "0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "error: -c auto" in r.stderr and "MiB" in r.stderr, r.stderr
    r = subprocess.run([os.path.join(BIN, "strata-server"), "-m", SMOL, "-np", "64", "-c", "512",
                        "--port", "0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "tokens per slot" in r.stderr, r.stderr
    # --cors answers preflight and marks answers; --queue 0 serves a free slot and refuses a
    # request that would have to wait.
    with Server("-np", "1", "--queue", "0", "-c", "512", "-t", "1",
                "--cors", "http://example.test") as srv:
        status, headers, _ = call(srv, "OPTIONS", "/v1/chat/completions", key=None)
        assert status == 204 and headers.get("Access-Control-Allow-Origin") == "http://example.test"
        status, headers, _ = call(srv, "GET", "/health", key=None)
        assert headers.get("Access-Control-Allow-Origin") == "http://example.test", headers
        a = raw_request(srv, chat_body("Tell me about the sun.", 40, stream=True))
        got = b""
        while b"data: " not in got:
            got += a.recv(4096)
        status, r = call_json(srv, "POST", "/v1/chat/completions", chat_body("Hi", 2))
        assert status == 503 and r["error"]["code"] == "queue_full", r
        a.close()
        wait_idle(srv)
        status, r = call_json(srv, "POST", "/v1/chat/completions", chat_body("Hi", 2))
        assert status == 200, r
        assert srv.stop() == 0


def test_context_shift():
    """A 64-token slot: without --ctx-shift 100 tokens end at the context ("length" after 64 - 5
    + 1); with it they all come, the cache making room in place (no prompt token computed again)."""
    if not os.path.exists(STORIES):
        print("  skipped: no stories260K")
        return
    body = {"prompt": "Once upon a time", "max_tokens": 100, "temperature": 0}
    with Server("-np", "1", "-c", "64", "-ctk", "f16", "-ctv", "f16", model=STORIES) as srv:
        _, r = call_json(srv, "POST", "/v1/completions", body)
        assert r["choices"][0]["finish_reason"] == "length", r
        assert r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] == 65, r["usage"]
        assert metric(srv, "strata_context_shift_tokens_total") == 0
        srv.stop()
    with Server("-np", "1", "-c", "64", "-ctk", "f16", "-ctv", "f16", "--ctx-shift",
                model=STORIES) as srv:
        _, r = call_json(srv, "POST", "/v1/completions", dict(body, n_keep=-1))
        assert r["usage"]["completion_tokens"] == 100, r
        prompt = r["usage"]["prompt_tokens"]
        assert metric(srv, "strata_context_shift_tokens_total") > 0
        assert metric(srv, "strata_prompt_tokens_total") == prompt  # nothing re-prefilled
        # Through Ollama's API with num_keep: the same tokens as the OpenAI request above.
        _, g = call_json(srv, "POST", "/api/generate", {
            "model": "stories260K", "prompt": "Once upon a time", "stream": False,
            "options": {"num_predict": 100, "temperature": 0, "num_keep": -1}})
        assert g["eval_count"] == 100 and g["response"] == r["choices"][0]["text"], (g, r)
        srv.stop()


def slot_action(srv, action, filename, slot=0):
    return call_json(srv, "POST", "/slots/%d?action=%s" % (slot, action),
                     {"filename": filename} if filename else None)


def test_slot_save_restore():
    d = os.path.join(WORK, "slots")
    os.makedirs(d, exist_ok=True)
    first = chat_body("What is the capital of France?", 8)
    for policy, fname in (("-ctk f16 -ctv f16", "f16.slot"),
                          ("-ctk q8_0 -ctv turbo3", "default.slot"),
                          ("k=turbo4;v=turbo3;recent=16;k-balance", "kbal.slot")):
        common = ["-np", "1", "-c", "1024", "-t", "1", "--kv-policy", policy,
                  "--slot-save-path", d]
        with Server(*common) as a:
            _, r1 = call_json(a, "POST", "/v1/chat/completions", first)
            answer = r1["choices"][0]["message"]["content"]
            second = dict(first, messages=first["messages"] + [
                {"role": "assistant", "content": answer},
                {"role": "user", "content": "And of Italy?"}])
            status, saved = slot_action(a, "save", fname)
            assert status == 200 and saved["n_tokens"] > 10, saved
            _, uninterrupted = call_json(a, "POST", "/v1/chat/completions", second)
            assert a.stop() == 0
        with Server(*common) as b:
            status, restored = slot_action(b, "restore", fname)
            assert status == 200 and restored["n_tokens"] == saved["n_tokens"], restored
            _, resumed = call_json(b, "POST", "/v1/chat/completions", second)
            assert resumed["choices"] == uninterrupted["choices"], (policy, resumed, uninterrupted)
            assert resumed["usage"] == uninterrupted["usage"], (resumed, uninterrupted)
            assert resumed["usage"]["prompt_tokens_details"]["cached_tokens"] > 10
            status, err = slot_action(b, "restore", "../etc/passwd")
            assert status == 400 and "plain file name" in err["error"]["message"], err
            status, err = slot_action(b, "restore", "missing.slot")
            assert status == 400, err
            status, err = slot_action(b, "erase", None)
            assert status == 200
            b.stop()
    # A slot file restored under another policy: a named error.
    with Server("-np", "1", "-c", "1024", "-t", "1", "--slot-save-path", d,
                "--kv-policy", "-ctk f16 -ctv f16") as c:
        status, err = slot_action(c, "restore", "default.slot")
        assert status == 400 and "policy" in err["error"]["message"], err
        c.stop()


# ---- runner ---------------------------------------------------------------------------------

def main():
    os.makedirs(WORK, exist_ok=True)
    failures = []

    def run(fn, *args):
        t0 = time.time()
        try:
            fn(*args)
            print("ok   %-36s %6.2f s" % (fn.__name__, time.time() - t0), flush=True)
        except Exception:
            failures.append(fn.__name__)
            print("FAIL %-36s %6.2f s" % (fn.__name__, time.time() - t0), flush=True)
            traceback.print_exc()

    t_all = time.time()
    only_stories = os.environ.get("STRATA_SERVER_TEST_ONLY") == "stories"
    if not only_stories:
        with Server("-np", "2", "-c", "2048", "-t", "1", "--api-key", KEY) as srv:
            for fn in (test_openai_chat, test_openai_chat_stream, test_identity_with_strata_chat,
                       test_special_tokens_are_text, test_stop_string_spanning_tokens,
                       test_parallel_chat_equals_sequential, test_kv_policy_per_request,
                       test_faults, test_disconnect_frees_slot,
                       test_ollama, test_metrics_and_slots):
                run(fn, srv)
            if srv.stop() != 0:
                failures.append("smollm2 server exit")
    if os.path.exists(STORIES):
        with Server("-np", "4", "-c", "2048", "-t", "1", "-ctk", "f16", "-ctv", "f16",
                    "--queue", "64", model=STORIES) as srv:
            for fn in (test_completions, test_framing_with_curl, test_parallel_equals_sequential,
                       test_64_connections):
                run(fn, srv)
            rc = srv.stop()
            if rc != 0:
                failures.append("stories server exit")
                print("stories server exited with %d:\n%s" % (rc, "".join(srv.log)[-20000:]))
    else:
        print("skipped: %s not found" % STORIES)
    if not only_stories:
        run(test_queue_full_and_sigterm)
        run(test_flags)
        run(test_context_shift)
        run(test_slot_save_restore)
    print("%d failed; %.1f s in all" % (len(failures), time.time() - t_all))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
