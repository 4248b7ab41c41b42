"""The rules no sentence can change, decided in code before any parser or model reads it, and
again on what a model answered.

A language model asked to refuse prompt injections does so unreliably (measured with the 1.5B
model: whether it refused flipped with the thread count), so refusing is never left to it:

- ``clean(text)``: the input as parsers see it, or a refusal: empty; longer than
  ``MAX_CHARS`` (capped before any model); control or format characters (zero-width, bidi
  overrides, NUL: anything in Unicode categories Cc/Cf except tab and newline, which become
  spaces); scripts other than Latin and Han mixed in (Cyrillic look-alikes of "USDC", ...).
  Compatibility forms are folded (NFKC: full-width digits and letters, ideographic spaces).
- ``refuse_rule_changes(text)``: prompt injections ("ignore previous instructions", "SYSTEM:",
  "developer mode", role tags such as ``<|im_start|>``), attempts to change the limits, the
  policy, the approvals or the recipients ("raise my limit", "add 0x.. to the allow list",
  "from now on send everything to"), and sweeps of the whole wallet ("everything", "all my
  funds", "empty my wallet"): each an ``IntentRefused`` naming the rule. English and Chinese.

Both run on every sentence, whichever parser then reads it; ``check_grounded`` (in
``agentbazaar.intents.understand``) holds a model's answer to what the sentence said.
"""

from __future__ import annotations

import re
import unicodedata

from agentbazaar.intents.errors import IntentRefused

MAX_CHARS = 500
_ALLOWED_SCRIPTS = ("LATIN", "CJK", "DIGIT", "FULLWIDTH", "IDEOGRAPHIC", "HALFWIDTH")

_INJECTION = [
    r"ignore\b.{0,40}\b(?:previous|prior|above|earlier|all|any|your|the)\b.{0,30}"
    r"\b(?:instructions?|prompts?|rules?|messages?|directions?|guidelines?|constraints?)",
    r"(?:disregard|forget|override|bypass)\b.{0,40}\b(?:instructions?|prompts?|rules?|"
    r"polic(?:y|ies)|limits?|guidelines?|constraints?|safeguards?|checks?)",
    r"(?:system|developer|assistant|user|admin|root)\s*(?:prompt|message)?\s*:",
    r"developer mode\b|\bgod mode\b|jailbreak|\bdan mode\b|\bdo anything now\b",
    r"\byou are (?:now|no longer)\b|\bpretend (?:to be|you)\b|\bnew instructions?\b",
    r"\bsystem prompt\b|\breveal\b.{0,20}\bprompt\b",
    r"<\|?\s*/?\s*(?:im_start|im_end|system|user|assistant|endoftext)\s*\|?>|\[/?inst\]|<</?sys>>",
    r"#{1,6}\s*(?:system|instruction|user|assistant)",
    r"忽略.{0,12}(?:指令|指示|提示|规则|規則|说明|說明|限制)|无视.{0,12}(?:指令|规则|限制)",
    r"系统提示|系統提示|开发者模式|開發者模式|越狱|越獄|扮演|你现在是|你現在是",
]
_RULES = [
    r"\b(?:raise|increase|lift|remove|disable|turn off|change|set|update|double|bump|lower|"
    r"reset|edit|modify|relax|loosen)\s+(?:(?:my|the|your|our|this|wallet'?s?|spending|daily|"
    r"weekly|monthly|rolling|payment|per[- ]payment|transfer|approval|max(?:imum)?|trading|"
    r"order|its|a|any)\s+){0,3}(?:limits?|caps?|polic(?:y|ies)|approvals?|thresholds?|"
    r"allow ?lists?|deny ?lists?|white ?lists?|black ?lists?|spending rules?|rules?)\b",
    r"\b(?:add|put|whitelist|allowlist|trust)\b.{0,60}\b(?:to|on|in)\s+(?:the\s+|my\s+)?"
    r"(?:allow ?list|white ?list|trusted list|approved list)",
    r"\bwithout\s+(?:any\s+)?(?:limits?|approvals?|confirmation|checks?|asking)\b|"
    r"\bno\s+(?:approval|confirmation)\s+(?:needed|required)\b|\bskip\s+(?:the\s+)?"
    r"(?:approval|confirmation|checks?|policy)\b|\bauto[- ]?approve\b",
    r"\b(?:from now on|always|in future|in the future|henceforth)\b.{0,60}"
    r"\b(?:send|pay|transfer|route|forward|redirect)\b",
    r"\b(?:change|replace|redirect|switch|update)\b.{0,20}\b(?:recipients?|payees?|"
    r"destination|beneficiar(?:y|ies)|payout address|withdrawal address)\b",
    r"(?:提高|增加|取消|解除|修改|更改|关闭|關閉|放宽|放寬).{0,8}(?:限额|限額|额度|額度|限制|"
    r"策略|审批|審批|白名单|白名單|上限|预算|預算)",
    r"(?:加入|添加|加到).{0,20}(?:白名单|白名單)|以后(?:都|所有)|以後(?:都|所有)|不需要(?:审批|審批|确认|確認)",
]
_SWEEP = [
    r"\b(?:everything|every ?thing|all (?:of )?(?:my|the|our)? ?(?:funds|money|assets|tokens|"
    r"coins|balances?|holdings|crypto|wallet)|all (?:i|we) (?:have|own|hold)|"
    r"(?:my|the) (?:entire|whole|full) (?:wallet|balance|portfolio|funds|account)|"
    r"empty (?:out )?(?:my|the) (?:wallet|account)|drain (?:my|the) (?:wallet|account))\b",
    r"所有(?:的)?(?:钱|錢|资金|資金|资产|資產|币|幣|代币|代幣)|全部(?:的)?(?:钱|錢|资金|資金|资产|資產)"
    r"|(?:清空|掏空)(?:我的)?(?:钱包|錢包|账户|賬戶)|一切",
]
_COMPILED = {
    "injection": [re.compile(p, re.IGNORECASE) for p in _INJECTION],
    "rules": [re.compile(p, re.IGNORECASE) for p in _RULES],
    "sweep": [re.compile(p, re.IGNORECASE) for p in _SWEEP],
}
_WHY = {
    "injection": "it reads like instructions to the parser, not a request; nothing was done",
    "rules": "limits, policy, approvals and recipients are changed in the wallet's policy "
    "(bazaar wallet policy), never from a sentence",
    "sweep": "moving everything at once is never done from a sentence: name the token and the "
    "amount (e.g. 'send all my USDC to bob')",
}


def clean(text: object) -> str:
    """The sentence as the parsers read it (NFKC, one line), or ``IntentRefused``."""
    if not isinstance(text, str) or not text.strip():
        raise IntentRefused(
            "empty request: say what to do, e.g. 'swap 100 USDC for WETH'", reason="empty"
        )
    if len(text) > MAX_CHARS:
        raise IntentRefused(
            f"request too long ({len(text)} characters): one action in at most {MAX_CHARS}",
            reason="too_long",
            length=len(text),
        )
    folded = unicodedata.normalize("NFKC", text)
    for char in folded:
        if char in "\t\n\r":
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs", "Cn"):
            raise IntentRefused(
                f"the request holds a control or invisible character (U+{ord(char):04X}): "
                "type it again as plain text",
                reason="control",
            )
    _one_script(folded)
    return re.sub(r"\s+", " ", folded).strip()


def _one_script(text: str) -> None:
    """Latin and Han letters, ASCII digits, punctuation, spaces and currency or maths signs
    only: another script in a request about money is refused (a Cyrillic 'С' in 'USDС' would
    otherwise look like a token), and so are other digits (Arabic-Indic '٣' reads as 3 to
    Python) and pictographs."""
    for char in text:
        if char.isascii():
            continue
        category = unicodedata.category(char)
        name = unicodedata.name(char, "")
        if category.startswith("L") and name.startswith(_ALLOWED_SCRIPTS):
            continue
        if category.startswith(("P", "Z", "Sc", "Sm")):
            continue
        kind = name.split(" ")[0].title() if category.startswith("L") else "symbol"
        raise IntentRefused(
            f"the request mixes in {kind} characters ({char!r}): write it in English or "
            "Chinese with plain digits",
            reason="script",
        )


def refuse_rule_changes(text: str) -> None:
    """``IntentRefused`` if ``text`` tries to steer the parser, change the rules or sweep the
    wallet (see the module doc); returns quietly otherwise."""
    lowered = text.lower()
    for kind, patterns in _COMPILED.items():
        for pattern in patterns:
            m = pattern.search(lowered)
            if m:
                raise IntentRefused(
                    f"refused: {_WHY[kind]} (at {m.group(0).strip()!r})", reason=kind
                )


def screen(text: object) -> str:
    """``clean`` then ``refuse_rule_changes``: what every parser is handed."""
    cleaned = clean(text)
    refuse_rule_changes(cleaned)
    return cleaned
