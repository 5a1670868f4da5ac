"""Which diarized voice is the collector: several cues weighed together.

Diarization (monitor.speech.diarize) finds two voices, A and B, in a mono recording
but not who is who. "Who speaks first" fails on the usual outbound call, where the
debtor answers with 喂, and keywords alone fail on an abusive call that never names the
lender, so each cue votes with a weight:

  names_lender     names the lender or agency (这里是…金融, 我是…客服)          2.0
  identity_check   asks whether they speak to the debtor (是王先生本人吗, …是吧)  2.0
  rules            collector-speech rules fire on this voice's lines          2.5
  payment          asks for payment or states the overdue amount             1.5
  talk_share       talks clearly more (collectors usually do)                 0.5
  answers_phone    on an outbound call, opens with a bare 喂/你好: the debtor   0.5

The confidence is the winning margin over the weight of the cues that pointed
anywhere. When a strong cue (weight 1.5 or more) points at the other voice the call
says so in its notes; nothing is decided silently. With no cue at all the speakers stay
``unknown``. Findings on diarized turns stay ``speaker_verified: false`` until a person
confirms or swaps the roles (``confirmed_by``).
"""

from __future__ import annotations

import re
from dataclasses import replace

from monitor.audit import Action
from monitor.detection.engine import Engine
from monitor.detection.text import normalise, pinyin_keys
from monitor.models import VOICES, Call, CallSignals, SpeakerRoles, Turn

WEIGHTS = {
    "names_lender": 2.0,
    "identity_check": 2.0,
    "rules": 2.5,
    "payment": 1.5,
    "talk_share": 0.5,
    "answers_phone": 0.5,
}
STRONG_CUE = 1.5
# talk_share points at a voice only with at least this lead in share of speech.
TALK_SHARE_LEAD = 0.1

_NUM = "[零一二两三四五六七八九十百千万亿0-9]"
_PATTERNS = {
    "names_lender": re.compile(
        r"(这里是|我是|我们是|这边是|我这边是|我们这边是)[^，。？！,.?!]{0,15}"
        r"(金融|银行|贷|公司|平台|催收|法务|客服|中心|律所|事务所|资产)"
    ),
    "identity_check": re.compile(
        r"是[^，。？！,.?!]{1,6}(本人|先生|女士|小姐)(吗|吧)|本人(吗|吧)|(^|[，。？！,.?!])[^，。？！,.?!]{2,4}是吧[？?]"
    ),
    "payment": re.compile(
        rf"逾期|欠款|欠了|{_NUM}+(元|块)|还款|什么时候还|尽快还|马上还|本金|利息|罚息|应还|结清|待还|还清"
    ),
}
# The same cues by sound (toneless, accent-merged pinyin keys, as the rules' homophone
# matching uses): Whisper base writes 于七 for 逾期, 京荣 for 金融, 环款 for 还款.
_SOUND_PATTERNS = {
    "names_lender": re.compile(
        r"\b(wo si|ze li si|zei li si|wo men si|ze bian si)\b.{0,60}?\b"
        r"(jin rong|ke fu|yin han|dai kuan|gon si|pin tai|cui sou|fa wu|zi can|xin dai)\b"
    ),
    "identity_check": re.compile(r"\bben ren (ma|ba)\b"),
    "payment": re.compile(
        r"\b(yu qi|huan kuan|qian kuan|ben jin|li xi|fa xi|jie qin|dai huan|yin huan|huan qin)\b"
    ),
}
_GREETING = re.compile(r"^(喂|你好|您好|哪位|谁啊|谁)[，。？！,.?!\s]*(喂|你好|您好|哪位|谁啊)?[，。？！,.?!\s]*$")


def _counts(call: Call, cue: str) -> dict[str, int]:
    """Matches of a cue per voice: by characters or by sound, whichever finds more."""
    counts = dict.fromkeys(VOICES, 0)
    for turn in call.turns:
        if turn.voice in counts:
            sound = " ".join(pinyin_keys(normalise(turn.text)))
            counts[turn.voice] += max(len(_PATTERNS[cue].findall(turn.text)), len(_SOUND_PATTERNS[cue].findall(sound)))
    return counts


def _leader(counts: dict[str, float], min_lead: float = 1.0) -> str | None:
    a, b = counts[VOICES[0]], counts[VOICES[1]]
    if abs(a - b) < min_lead:
        return None
    return VOICES[0] if a > b else VOICES[1]


def role_cues(call: Call, engine: Engine) -> list[tuple[str, str | None]]:
    """(cue, the voice it points at as the collector, or None) for each cue."""
    cues = []
    for name in ("names_lender", "identity_check", "payment"):
        cues.append((name, _leader(_counts(call, name))))
    # The rules as if nobody were known: every turn "unknown" (collector rules apply).
    unknown = replace(call, turns=tuple(replace(t, speaker="unknown") for t in call.turns), roles=None)
    fired = dict.fromkeys(VOICES, 0)
    for finding in engine.scan(unknown).findings:
        if finding.turn is not None and call.turns[finding.turn].voice in fired:
            fired[call.turns[finding.turn].voice] += 1
    cues.append(("rules", _leader(fired)))
    share = {voice: 0.0 for voice in VOICES}
    if call.signals is not None:
        for side in call.signals.sides:
            if side.speaker in share:
                share[side.speaker] = side.talk_share
    cues.append(("talk_share", _leader(share, TALK_SHARE_LEAD)))
    first = next((t for t in call.turns if t.voice in VOICES), None)
    answered = None
    if call.direction == "outbound" and first is not None and _GREETING.match(first.text.strip()):
        answered = VOICES[1 - VOICES.index(first.voice)]
    cues.append(("answers_phone", answered))
    return cues


def decide(cues: list[tuple[str, str | None]], voices: int) -> SpeakerRoles:
    """Weigh the cues into a decision, with its confidence and any disagreement."""
    score = sum(WEIGHTS[c] * (1 if v == VOICES[0] else -1) for c, v in cues if v is not None)
    weight = sum(WEIGHTS[c] for c, v in cues if v is not None)
    if weight == 0 or score == 0:
        pointing = ", ".join(f"{c} → {v}" for c, v in cues if v is not None)
        why = "no cue says which voice is the collector" if weight == 0 else f"role cues disagree and cancel out ({pointing})"
        return SpeakerRoles(voices, None, 0.0, tuple(cues), conflict=weight > 0,
                            note=f"roles not assigned: {why}; speakers left unknown")
    collector = VOICES[0] if score > 0 else VOICES[1]
    against = [c for c, v in cues if v is not None and v != collector and WEIGHTS[c] >= STRONG_CUE]
    confidence = round(abs(score) / weight, 2)
    note = None
    if against:
        agree = [c for c, v in cues if v == collector]
        note = (f"role cues disagree: {', '.join(agree)} point at voice {collector} as the collector, "
                f"{', '.join(against)} at the other voice; taken as voice {collector} (confidence {confidence:.2f}), "
                "please check")
    return SpeakerRoles(voices, collector, confidence, tuple(cues), conflict=bool(against), note=note)


def assign_roles(call: Call, engine: Engine, collector_voice: str | None = None, confirmed_by: str | None = None) -> Call:
    """The call with collector/debtor speakers on its diarized turns.

    Stereo calls and calls without diarized voices come back unchanged. A call whose
    roles a person confirmed keeps them; ``collector_voice`` with ``confirmed_by`` is
    a person's decision (a swap, or "this is my voice") and replaces the inferred one.
    """
    if call.roles is None or not any(t.speaker_source == "diarized" for t in call.turns):
        return call
    if collector_voice is not None:
        roles = replace(call.roles, collector_voice=collector_voice, confidence=1.0, conflict=False,
                        confirmed_by=confirmed_by, note=f"roles set by {confirmed_by}" if confirmed_by else None)
    elif call.roles.confirmed_by is not None and call.roles.collector_voice is not None:
        roles = call.roles
    elif call.roles.voices < 2:
        return replace(call, roles=replace(call.roles, collector_voice=None, confidence=0.0))
    else:
        roles = decide(role_cues(call, engine), call.roles.voices)
    names = {}
    if roles.collector_voice is not None:
        debtor_voice = VOICES[1 - VOICES.index(roles.collector_voice)]
        names = {roles.collector_voice: "collector", debtor_voice: "debtor"}
    turns = tuple(
        replace(t, speaker=names.get(t.voice, "unknown")) if t.speaker_source == "diarized" else t
        for t in call.turns
    )
    signals = call.signals
    if signals is not None and names:
        before = call.roles.collector_voice
        if before is not None and any(side.speaker == "collector" for side in signals.sides):
            # Sides already carry roles: a swap exchanges them.
            if before != roles.collector_voice:
                signals = rename_sides(signals, {"collector": "debtor", "debtor": "collector"})
        else:
            signals = rename_sides(signals, names)
    notes = tuple(n for n in call.notes if not n.startswith("roles: "))
    if roles.note:
        notes = notes + (f"roles: {roles.note}",)
    return replace(call, turns=turns, roles=roles, signals=signals, notes=notes)


def set_roles(store, engine: Engine, call_id: str, collector_voice: str, actor: str, action: Action) -> Call:
    """A person's decision on a stored mono call: ``collector_voice`` ("A"/"B") is the
    collector (a staff swap or confirmation, or a debtor's "this is my voice" naming the
    other voice). Stores the roles (audited as ``action``), then runs the rules over the
    call again so its findings follow; those findings are now speaker-verified."""
    if collector_voice not in VOICES:
        raise ValueError(f"collector_voice must be one of {', '.join(VOICES)}, not {collector_voice!r}")
    call = store.call(call_id)
    if call.roles is None or call.roles.voices < 2:
        raise ValueError(f"call {call_id!r} has no two diarized voices to assign")
    decided = assign_roles(call, engine, collector_voice=collector_voice, confirmed_by=actor)
    store.save_speakers(decided, actor, action, {"before": call.roles.collector_voice})
    stored = store.call(call_id)
    store.save_findings(call_id, engine.scan(stored, store.earlier_calls(stored)), engine.pack.version)
    return stored


def rename_sides(signals: CallSignals, names: dict[str, str]) -> CallSignals:
    """The same signals with sides renamed (voice A/B → collector/debtor)."""
    sides = (replace(s, speaker=names.get(s.speaker, s.speaker)) for s in signals.sides)
    return replace(signals, sides=tuple(sorted(sides, key=lambda s: s.speaker)))


def turn_signals(turn: Turn) -> dict:
    """A turn's speaker source and signals, for JSON (analyze, the API, exports)."""
    return {
        "speaker_source": turn.speaker_source, "voice": turn.voice, "loudness": turn.loudness,
        "raised_voice": turn.raised_voice, "overtalk": turn.overtalk,
    }


def call_signals(call: Call) -> dict:
    """A call's signals, roles and notes, for JSON."""
    return {
        "signals": call.signals.to_dict() if call.signals is not None else None,
        "roles": call.roles.to_dict() if call.roles is not None else None,
        "notes": list(call.notes),
    }


__all__ = ["WEIGHTS", "call_signals", "set_roles", "turn_signals", "assign_roles", "decide", "role_cues"]
