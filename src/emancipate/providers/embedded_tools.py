"""Tool calling on the embedded model: the prompt, the grammar and the reader of the answer.

The model (SmolLM2-Instruct, ChatML) has no tool role and no tool-call tokens, so tools are
written into the prompt in the form SmolLM2's function-calling prompt uses (the one its
model card and Ollama's `smollm2` template give):

- the system message lists the tools between `<tools>` and `</tools>`, one JSON line each, and
  says how to call one: `<tool_call>[` + `{"name": …, "arguments": {…}}` + `]</tool_call>`;
- an assistant `tool_calls` message is rendered as that same text, so the model sees in the
  history exactly what it would write;
- a `tool` message is a user turn holding `<tool_response>` … `</tool_response>`.

A llama.cpp grammar holds the answer. With `required` or a named function it is only
`<tool_call>[` + one JSON object whose `name` is one of the tools and whose `arguments` match
that tool's `parameters` schema + `]</tool_call>`. With `auto` it is that **or** free text that
does not begin with `<`: the first character the model writes decides (one pass, no second
request, deterministic for a given seed). The cost: with `auto`, a text answer cannot begin
with `<`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson

DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_HEAD = re.compile(r'<tool_call>\[\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,'
                   r'\s*"arguments"\s*:\s*')


def schema_gbnf(schema: dict[str, Any], name: str = "") -> str:
    """llama.cpp's JSON-schema → GBNF conversion, its top rule named `name` (`root` if empty)
    so that it can be embedded in a larger grammar."""
    from llama_cpp import llama_grammar

    converter_class: Any = llama_grammar.SchemaConverter  # untyped in llama-cpp-python
    converter = converter_class(prop_order={}, allow_fetch=False, dotall=False,
                                raw_pattern=False)
    converter.visit(converter.resolve_refs(schema, "schema"), name)
    return str(converter.format_grammar())


def _prefixed_refs(node: Any, prefix: str) -> Any:
    """A copy of a schema whose local `$defs` / `definitions` refs point at `prefix`-named
    entries (the tools' definitions are merged into one schema, where names may clash)."""
    if isinstance(node, list):
        return [_prefixed_refs(x, prefix) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            for section in ("#/$defs/", "#/definitions/"):
                if value.startswith(section):
                    value = "#/$defs/" + prefix + value[len(section):]
        out[key] = _prefixed_refs(value, prefix)
    return out


def call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON schema of one call: `{"name": <a tool's name>, "arguments": <its schema>}`."""
    defs: dict[str, Any] = {}
    alternatives = []
    for i, tool in enumerate(tools):
        params = _prefixed_refs(parameters(tool), f"t{i}-")
        for section in ("$defs", "definitions"):
            for name, sub in (params.pop(section, None) or {}).items():
                defs[f"t{i}-{name}"] = sub
        alternatives.append({
            "type": "object",
            "properties": {"name": {"const": tool["name"]}, "arguments": params},
            "required": ["name", "arguments"],
        })
    schema: dict[str, Any] = (alternatives[0] if len(alternatives) == 1
                              else {"anyOf": alternatives})
    if defs:
        schema = {**schema, "$defs": defs}
    return schema


def parameters(tool: dict[str, Any]) -> dict[str, Any]:
    """A function's `parameters` (no parameters: an empty object)."""
    params = tool.get("parameters")
    if not params:
        return {"type": "object", "properties": {}}
    return dict(params)


def tool_gbnf(tools: list[dict[str, Any]], required: bool) -> str:
    """The grammar of the answer: one tool call, or (not `required`) text not starting
    with `<`."""
    call = r'"<tool_call>[\n" tool-call "\n]</tool_call>"'
    root = call if required else call + " | free-text"
    rules = [f"root ::= {root}", schema_gbnf(call_schema(tools), "tool-call")]
    if not required:
        rules.append(r"free-text ::= ([^<] [^\x00]*)?")
    return "\n".join(rules)


def tools_system_text(tools: list[dict[str, Any]]) -> str:
    lines = "\n".join(
        orjson.dumps({"name": t["name"], "description": t.get("description") or "",
                      "parameters": parameters(t)}).decode()
        for t in tools)
    return (
        "You are an expert in composing functions. You are given a question and a set of "
        "possible functions. Based on the question, you may make a function call to achieve "
        "the purpose.\nYou have access to the following tools:\n"
        f"<tools>{lines}</tools>\n"
        "To call a function, answer only in the following format, with the parameter types "
        "of the function:\n"
        '<tool_call>[\n{"name": "func_name", "arguments": {"argument1": "value1"}}\n]'
        "</tool_call>\n"
        "If no function call is needed, answer in plain text. A function's result comes back "
        "between <tool_response> and </tool_response>."
    )


def render_prompt(messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                  text_of: Any) -> str:
    """The ChatML prompt (SmolLM2's template, its default system line when the client sends
    none) with the tools in the system message and tool calls / results in the history."""
    turns: list[tuple[str, str]] = []
    for m in messages:
        role = m["role"]
        content = m.get("content")
        if isinstance(content, list):
            content = text_of(content)
        content = content or ""
        if role == "developer":
            role = "system"
        if role == "assistant" and m.get("tool_calls"):
            calls = ",\n".join(
                orjson.dumps({
                    "name": c["function"]["name"],
                    "arguments": _arguments(c["function"].get("arguments")),
                }).decode()
                for c in m["tool_calls"] if c.get("type", "function") == "function")
            call_text = f"{CALL_OPEN}[\n{calls}\n]{CALL_CLOSE}"
            content = f"{content}\n{call_text}" if content else call_text
        elif role in ("tool", "function"):
            role, content = "user", f"<tool_response>\n{content}\n</tool_response>"
        turns.append((role, content))
    if not turns or turns[0][0] != "system":
        turns.insert(0, ("system", DEFAULT_SYSTEM))
    if tools:
        turns[0] = ("system", turns[0][1] + "\n\n" + tools_system_text(tools))
    return "".join(f"<|im_start|>{r}\n{c}<|im_end|>\n" for r, c in turns) + \
        "<|im_start|>assistant\n"


def _arguments(raw: Any) -> Any:
    """A history call's arguments as JSON (a string that is not JSON is kept as a string)."""
    if not isinstance(raw, str):
        return raw if raw is not None else {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


class AnswerReader:
    """Reads the generated text piece by piece into events: ("delta", text) for a text
    answer, or ("call", (id, name)) then ("args", fragment)… for a tool call, the fragments
    joined being exactly the JSON arguments object (nothing of the markers around it)."""

    def __init__(self, tools_active: bool) -> None:
        self.mode = "undecided" if tools_active else "text"
        self.buf = ""
        self.depth = 0
        self.in_string = False
        self.escaped = False
        self.called = False
        self.args_complete = False

    def feed(self, piece: str) -> list[tuple[str, Any]]:
        if self.mode == "undecided":
            self.buf += piece
            if not self.buf:
                return []
            self.mode = "head" if self.buf.startswith("<") else "text"
            piece, self.buf = self.buf, ""
        if self.mode == "text":
            return [("delta", piece)] if piece else []
        if self.mode == "head":
            self.buf += piece
            match = _HEAD.match(self.buf)
            rest = self.buf[match.end():] if match else ""
            if match is None or not rest:  # wait for the first character of the arguments
                return []
            self.mode, self.called = "args", True
            name = orjson.loads(match.group(1))
            events: list[tuple[str, Any]] = [("call", ("call_" + uuid.uuid4().hex[:24], name))]
            return events + self._args(rest)
        if self.mode == "args":
            return self._args(piece)
        return []  # after the arguments: the closing marker

    def _args(self, piece: str) -> list[tuple[str, Any]]:
        end = len(piece)
        for i, ch in enumerate(piece):
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.in_string = False
            elif ch == '"':
                self.in_string = True
            elif ch in "{[":
                self.depth += 1
            elif ch in "}]":
                self.depth -= 1
                if self.depth == 0:
                    end = i + 1
                    self.mode, self.args_complete = "done", True
                    break
        fragment = piece[:end]
        return [("args", fragment)] if fragment else []
