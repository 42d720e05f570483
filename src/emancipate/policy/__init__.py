"""The co-opetition policy: which targets may see this request, and in what form.

Rules are evaluated per finding *and per target*, first match wins, the operator's rules
before the built-in cautious defaults. An action applies to that one target:

* `allow`: nothing changes;
* `redact`: an external target gets the value replaced by a placeholder (restored in the
  answer); in-house targets always get the original body;
* `in-house-only`: external targets are excluded;
* `block`: the target is excluded whatever its ownership (a rule without target
  conditions therefore blocks the request).

A vendor's relationship (`partner` / `competitor`) is looked up in the domain concerned:
the finding's own domain for a domain finding, otherwise the domains detected in the
request (a vendor that competes in any of them counts as a competitor). In-house targets
are never competitors. When no target remains, `PolicyPlan.blocked` names the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from emancipate.context import Decision, Finding, Principal, Target
from emancipate.guard.names import DETECTORS, label_for
from emancipate.guard.view import Path, describe, redactable, segments_of, value_at
from emancipate.policy.config import PolicyConfig, Relationship, Rule
from emancipate.policy.redact import Restorer, Span, redact_body

if TYPE_CHECKING:
    from emancipate.config import GatewayConfig

__all__ = ["DEFAULT_RULES", "Policy", "PolicyConfig", "PolicyPlan", "Restorer", "Rule"]

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(name="secrets-stay-in-house", cls=["secret"], action="in-house-only"),
    Rule(name="personal-data-redacted", cls=["personal"], action="redact"),
    Rule(name="confidential-terms-stay-in-house", cls=["confidential"], action="in-house-only"),
    Rule(name="no-competitor-on-its-domain", cls=["domain"], relationship="competitor",
         action="block"),
)
NO_RULE = "allow-by-default"

_SPECIFICITY = {"secret": 0, "personal": 1, "confidential": 2, "code": 3, "domain": 4}


@dataclass(slots=True)
class _Compiled:
    name: str
    rule: Rule

    def matches(self, cls: str, detector: str, domain: str | None, target: Target,
                principal: Principal, relationship: str) -> bool:
        r = self.rule
        if "*" not in r.cls and cls not in r.cls:
            return False
        if r.detector is not None and not any(fnmatchcase(detector, p) for p in r.detector):
            return False
        if r.ownership is not None and target.ownership != r.ownership:
            return False
        if r.vendor is not None and target.vendor not in r.vendor:
            return False
        if r.team is not None and principal.team not in r.team:
            return False
        if r.key is not None and principal.key_id not in r.key and principal.name not in r.key:
            return False
        return r.relationship is None or relationship == r.relationship


class Policy:
    """Built once from the gateway config; `plan` is pure and cheap when nothing was found."""

    def __init__(self, cfg: PolicyConfig,
                 vendor_relationships: dict[str, dict[str, Relationship]],
                 default_relationship: Relationship = "partner") -> None:
        self.cfg = cfg
        self.enabled = cfg.enabled
        rules = [
            _Compiled(r.name or f"policy.rules[{i}]", r) for i, r in enumerate(cfg.rules)
        ]
        if cfg.defaults:
            rules.extend(_Compiled(r.name or "", r) for r in DEFAULT_RULES)
        self.rules = rules
        self.relationships = vendor_relationships
        self.default_relationship = default_relationship

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> Policy:
        """The policy of `cfg`, checked first (`check_config`)."""
        cls.check_config(cfg)
        pcfg = cfg.policy
        rels = {v: dict(vp.relationships) for v, vp in pcfg.vendors.items()}
        return cls(pcfg, rels, pcfg.default_relationship)

    @staticmethod
    def check_config(cfg: GatewayConfig) -> None:
        """`policy` against `providers` (vendor names) and `guard` (domain and detector
        names): a typo would otherwise disable a rule silently. Raises `ConfigError`."""
        from emancipate.config import ConfigError

        pcfg = cfg.policy
        vendors = {p.vendor for p in cfg.providers.values()}
        domains = set(cfg.guard.domains) if "domain" in cfg.guard.classes else set()
        known_detectors = set(DETECTORS) | {f"domain:{d}" for d in domains}

        def fail(key: str, reason: str) -> None:
            raise ConfigError("<config>", key, reason)

        for vendor, vp in pcfg.vendors.items():
            if vendor not in vendors:
                fail(f"policy.vendors.{vendor}",
                     f"no provider has vendor {vendor!r} (vendors: "
                     f"{', '.join(sorted(vendors)) or 'none'})")
            for d in vp.relationships:
                if d not in domains:
                    fail(f"policy.vendors.{vendor}.relationships.{d}",
                         f"unknown domain {d!r} (guard.domains: "
                         f"{', '.join(sorted(domains)) or 'none'})")
        for i, r in enumerate(pcfg.rules):
            key = f"policy.rules.{i}"
            for d in r.domain or ():
                if d not in domains:
                    fail(f"{key}.domain", f"unknown domain {d!r} (guard.domains: "
                         f"{', '.join(sorted(domains)) or 'none'})")
            for v in r.vendor or ():
                if v not in vendors:
                    fail(f"{key}.vendor", f"no provider has vendor {v!r}")
            for p in r.detector or ():
                if not any(fnmatchcase(d, p) for d in known_detectors):
                    fail(f"{key}.detector", f"{p!r} matches no detector")
            if r.action == "redact" and r.cls == ["domain"]:
                fail(f"{key}.action", "a domain is a topic, not a value: it cannot be "
                     "redacted (use block or in-house-only)")

    # --- planning ------------------------------------------------------------------------

    def relationship(self, target: Target, domains: set[str] | list[str]) -> str:
        """`competitor` if the target's vendor competes in any of these domains."""
        if target.ownership == "in-house" or not domains:
            return "partner"
        rels = self.relationships.get(target.vendor, {})
        for d in domains:
            if rels.get(d, self.default_relationship) == "competitor":
                return "competitor"
        return "partner"

    def decide(self, cls: str, detector: str, domain: str | None, target: Target,
               principal: Principal, request_domains: set[str]) -> tuple[str, str]:
        """(rule name, action) for one kind of finding and one target."""
        for c in self.rules:
            r = c.rule
            if r.domain is not None:
                if domain is not None:
                    if domain not in r.domain:
                        continue
                    scope: set[str] | list[str] = [domain]
                else:
                    scope = [d for d in r.domain if d in request_domains]
                    if not scope:
                        continue
            else:
                scope = [domain] if domain is not None else request_domains
            rel = self.relationship(target, scope) if r.relationship is not None else ""
            if c.matches(cls, detector, domain, target, principal, rel):
                return c.name, r.action
        return NO_RULE, "allow"

    def plan(self, body: dict[str, Any], findings: list[Finding], targets: list[Target],
             principal: Principal) -> PolicyPlan:
        """Eligible targets, per-target redaction, audit records; never the values."""
        if not findings or not self.enabled:
            return PolicyPlan(list(targets), [], None, body)
        request_domains = {f.domain for f in findings if f.cls == "domain" and f.domain}
        groups: dict[tuple[str, str, str | None], list[int]] = {}
        for i, f in enumerate(findings):
            groups.setdefault((f.cls, f.detector, f.domain), []).append(i)
        order = sorted(groups, key=lambda k: (_SPECIFICITY.get(k[0], 9), k[1]))

        decisions: list[Decision] = []
        # target id -> rule, action, class, detector, the field that cannot hold a placeholder
        excluded: dict[str, tuple[str, str, str, str, str]] = {}
        redact: dict[str, set[int]] = {}
        for key in order:
            cls, detector, domain = key
            idx = groups[key]
            where = _where(findings, idx)
            fixed = _unredactable(body, findings, idx)
            for t in targets:
                rule, action = self.decide(cls, detector, domain, t, principal,
                                           request_domains)
                effective = action
                if action == "redact" and cls == "domain":
                    effective = "in-house-only"
                if effective == "redact" and fixed and t.ownership == "external":
                    # a URL, a name, a field name: no placeholder fits, so nothing is sent
                    excluded.setdefault(t.id, (rule, "unredactable", cls, detector, fixed))
                    outcome = f"target excluded: {fixed} cannot hold a placeholder"
                elif effective == "block" or (effective == "in-house-only"
                                              and t.ownership == "external"):
                    excluded.setdefault(t.id, (rule, effective, cls, detector, ""))
                    outcome = "target excluded"
                    if cls == "domain" and self.relationship(t, [domain or ""]) == "competitor":
                        outcome = f"target excluded: {t.vendor} competes in {domain}"
                elif effective == "redact" and t.ownership == "external":
                    redact.setdefault(t.id, set()).update(idx)
                    outcome = "redacted for this external target"
                elif effective in ("redact", "in-house-only"):
                    outcome = "sent as is: in-house target"
                else:
                    outcome = "allowed"
                decisions.append(Decision(
                    stage="policy", action=action, rule=rule, cls=cls, detector=detector,
                    target=t.id, reason=f"{len(idx)} {cls} finding(s) ({detector}) in "
                    f"{where}: {outcome}."))

        eligible = [t for t in targets if t.id not in excluded]
        blocked = None
        if not eligible:
            blocked = _blocked(excluded, targets)
            decisions.append(blocked)
        return PolicyPlan(eligible, decisions, blocked, body, findings,
                          {t: frozenset(s) for t, s in redact.items() if s})


def _where(findings: list[Finding], idx: list[int]) -> str:
    """`messages[0,2]`, then request-level fields by name: `messages[1], user`."""
    msgs = sorted({findings[i].message_index for i in idx if findings[i].message_index >= 0})
    fields = sorted({describe(findings[i].path) for i in idx
                     if findings[i].message_index < 0 and findings[i].path})
    parts = (["messages[" + ",".join(str(m) for m in msgs) + "]"] if msgs else []) + fields
    return ", ".join(parts) if parts else "the text"


def _unredactable(body: dict[str, Any], findings: list[Finding], idx: list[int]) -> str:
    """The first field among these findings that cannot hold a placeholder, described."""
    for i in idx:
        f = findings[i]
        if not f.path:
            continue
        try:
            text = value_at(body, f.path)
        except (KeyError, IndexError, TypeError):
            return describe(f.path)
        if not isinstance(text, str) or not redactable(f.path, text):
            return describe(f.path)
    return ""


def _blocked(excluded: dict[str, tuple[str, str, str, str, str]], targets: list[Target]
             ) -> Decision:
    """The rule that excluded the most targets (the first one on a tie) names the block."""
    counts: dict[str, int] = {}
    for rule, *_ in excluded.values():
        counts[rule] = counts.get(rule, 0) + 1
    rule = max(counts, key=lambda r: counts[r])  # dicts keep insertion order: first on ties
    _, action, cls, detector, fixed = next(v for v in excluded.values() if v[0] == rule)
    if not targets:
        reason = "This model has no target."
    elif action == "unredactable":
        reason = (f"the request contains {cls} data ({detector}) in {fixed}, a field that "
                  "cannot hold a placeholder, so it may only be sent to in-house targets, "
                  "and this model has none.")
    elif action == "in-house-only":
        reason = (f"the request contains {cls} data ({detector}) that may only be sent to "
                  "in-house targets, and this model has none.")
    elif cls == "domain":
        reason = (f"the request is about '{detector.partition(':')[2]}', and the vendor of "
                  "every target of this model competes in it.")
    else:
        reason = f"the request contains {cls} data ({detector}) that this rule blocks."
    return Decision(stage="policy", action="block", rule=rule, cls=cls, detector=detector,
                    target=None, reason=reason)


@dataclass(slots=True)
class PolicyPlan:
    """The policy's answer for one request."""

    targets: list[Target]
    decisions: list[Decision]
    blocked: Decision | None
    _body: dict[str, Any] = field(repr=False, default_factory=dict)
    _findings: list[Finding] = field(repr=False, default_factory=list)
    _redact: dict[str, frozenset[int]] = field(repr=False, default_factory=dict)
    _placeholders: dict[int, str] | None = field(repr=False, default=None)
    _values: dict[str, str] = field(repr=False, default_factory=dict)
    _bodies: dict[frozenset[int], tuple[dict[str, Any], dict[str, str]]] = field(
        repr=False, default_factory=dict)
    _all_text: str | None = field(repr=False, default=None)

    def body_for(self, target: Target, body: dict[str, Any]) -> dict[str, Any]:
        """The body this target may receive: the original for in-house targets and when
        nothing is redacted for it, otherwise a redacted copy (the input is never changed)."""
        if not any(t.id == target.id for t in self.targets):
            raise ValueError(f"target {target.id} is not eligible for this request")
        ids = self._redact.get(target.id)
        if not ids or target.ownership == "in-house":
            return body
        return self._redacted(ids, body)[0]

    def restorer_for(self, target: Target) -> Restorer | None:
        """A fresh restorer for the answer of this target, or None if nothing was redacted."""
        ids = self._redact.get(target.id)
        if not ids or target.ownership == "in-house":
            return None
        return Restorer(self._redacted(ids, self._body)[1])

    # --- redaction -----------------------------------------------------------------------

    def _redacted(self, ids: frozenset[int], body: dict[str, Any]
                  ) -> tuple[dict[str, Any], dict[str, str]]:
        cached = self._bodies.get(ids)
        if cached is not None and body is self._body:
            return cached
        by_path: dict[Path, list[tuple[int, int, int]]] = {}
        for i in ids:
            f = self._findings[i]
            by_path.setdefault(path_of(f), []).append((f.start, f.end, i))
        if self._placeholders is None:
            self._assign(body)
        assert self._placeholders is not None
        used: dict[str, str] = {}
        whole_args: dict[str, str] = {}
        spans: dict[Path, list[Span]] = {}
        for path, found in by_path.items():
            text = _text_at(body, path)
            if text is None:
                continue
            merged: list[Span] = []
            for s, e, i in _merge(found):
                if i >= 0:
                    ph = self._placeholders[i]
                else:  # overlapping findings: one placeholder for their union
                    ph = self._placeholder_for(text[s:e], "REDACTED", body)
                used[ph] = text[s:e]
                merged.append((s, e, ph))
            spans[path] = merged
        new_body = redact_body(body, spans, whole_args)
        used.update(whole_args)
        result = (new_body, used)
        if body is self._body:
            self._bodies[ids] = result
        return result

    def _assign(self, body: dict[str, Any]) -> None:
        """Number placeholders once per request, so every target sees the same ones and the
        same value always gets the same placeholder."""
        self._placeholders = {}
        every: set[int] = set()
        for ids in self._redact.values():
            every.update(ids)
        for i in sorted(every, key=lambda i: _order(self._findings[i])):
            f = self._findings[i]
            text = _text_at(body, path_of(f))
            if text is None:
                continue
            self._placeholders[i] = self._placeholder_for(
                text[f.start:f.end], label_for(f.detector, f.cls), body)

    def _placeholder_for(self, value: str, label: str, body: dict[str, Any]) -> str:
        for ph, v in self._values.items():
            if v == value and ph.startswith("[" + label + "_"):
                return ph
        all_text = self._all_text
        if all_text is None:
            all_text = self._all_text = "\n".join(
                s.text for s in segments_of(body).segments)
        n = 1 + sum(1 for ph in self._values if ph.startswith("[" + label + "_"))
        while f"[{label}_{n}]" in all_text or f"[{label}_{n}]" in self._values:
            n += 1
        ph = f"[{label}_{n}]"
        self._values[ph] = value
        return ph


def path_of(finding: Finding) -> Path:
    """Where a finding is in the body; a finding made without a path (by hand, or by an
    older scan) is in its message's string content."""
    return finding.path or ("messages", finding.message_index, "content")


def _text_at(body: dict[str, Any], path: Path) -> str | None:
    try:
        text = value_at(body, path)
    except (KeyError, IndexError, TypeError):
        return None
    return text if isinstance(text, str) else None


def _order(f: Finding) -> tuple[int, str, int]:
    return (f.message_index if f.message_index >= 0 else 1 << 30, repr(f.path), f.start)


def _merge(spans: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Sorted, non-overlapping spans; a union of overlapping findings gets index -1 unless
    one finding covers the others."""
    out: list[list[int]] = []
    for s, e, i in sorted(spans, key=lambda x: (x[0], -x[1])):
        if out and s < out[-1][1]:
            last = out[-1]
            if e > last[1]:
                last[1], last[2] = e, -1
            continue
        out.append([s, e, i])
    return [(s, e, i) for s, e, i in out]
